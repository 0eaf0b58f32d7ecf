#pragma once
// The communicator side of fault injection (runtime/core/fault_injection.h): with TRIDENT_FAULT
// set, the parallel context wraps each of its groups in this decorator, whose operations are
// fault points named after the operation ("all_reduce", "all_to_all", "all_gather",
// "reduce_scatter", "broadcast", "send", "recv", "barrier"). The point is reached after the
// operation is posted, so the victim dies with its part of the exchange in flight: its peers
// are inside the collective, mid-step ("all_reduce" of the gradient buckets) or mid-all-to-all
// ("all_to_all" of the expert dispatch), when it disappears. Without TRIDENT_FAULT nothing is
// wrapped.
#include <memory>
#include <string>
#include <vector>

#include "parallel/comm/communicator.h"

namespace trident::parallel::comm {

class FaultPointCommunicator final : public Communicator {
 public:
  explicit FaultPointCommunicator(std::shared_ptr<Communicator> inner) : inner_(std::move(inner)) {}

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

 private:
  std::shared_ptr<Communicator> inner_;
};

}  // namespace trident::parallel::comm
