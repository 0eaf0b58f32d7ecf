#pragma once
// ForwardingCommunicator: the base of the communicator decorators (DelayedLink,
// FaultPointCommunicator, TracingCommunicator). It answers rank, size, name, device, members
// and options from the communicator it wraps and posts every operation there. A decorator
// changes what happens around posting in one place, decorate(), for all eight operations,
// so adding an operation to Communicator means changing this class and not each decorator.
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "parallel/comm/communicator.h"

namespace trident::parallel::comm {

class ForwardingCommunicator : public Communicator {
 public:
  explicit ForwardingCommunicator(std::shared_ptr<Communicator> inner);

  int rank() const override { return inner_->rank(); }
  int size() const override { return inner_->size(); }
  const std::string& name() const override { return inner_->name(); }
  Device device() const override { return inner_->device(); }
  std::string describe_member(int group_rank) const override {
    return inner_->describe_member(group_rank);
  }
  const CommOptions& options() const override { return inner_->options(); }

  WorkHandle all_reduce(const Tensor& tensor, ReduceOp op) override;
  WorkHandle reduce_scatter(const Tensor& input, const Tensor& output, ReduceOp op) override;
  WorkHandle all_gather(const Tensor& input, const Tensor& output) override;
  WorkHandle all_to_all_v(const Tensor& input, const std::vector<int64_t>& send_counts,
                          const Tensor& output, const std::vector<int64_t>& recv_counts) override;
  WorkHandle broadcast(const Tensor& tensor, int root) override;
  WorkHandle send(const Tensor& tensor, int peer, int tag) override;
  WorkHandle recv(const Tensor& tensor, int peer, int tag) override;
  WorkHandle barrier() override;

 protected:
  // What the posted Work's OpInfo does not say about an operation: all_to_all_v's counts
  // (empty for every other operation), for decorators that size the traffic per peer.
  struct Exchange {
    const std::vector<int64_t>& send_counts;
    const std::vector<int64_t>& recv_counts;
  };

  // Posts one operation: `post` issues it on the inner communicator and returns its Work. The
  // default returns that Work unchanged; a decorator may act before and after posting and
  // return its own Work around the inner one.
  virtual WorkHandle decorate(const std::function<WorkHandle()>& post, const Exchange& exchange);

  Communicator& inner() const { return *inner_; }

 private:
  WorkHandle forward(const std::function<WorkHandle()>& post);

  std::shared_ptr<Communicator> inner_;
};

}  // namespace trident::parallel::comm
