#include "launch/fault_injection.h"

#include <cstdlib>
#include <memory>

#include "parallel/comm/communicator.h"
#include "runtime/core/fault_injection.h"

namespace trident::cli {

namespace {

using parallel::Communicator;
using parallel::WorkHandle;

// Forwards everything; each operation passes a fault point once it is posted.
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
  const parallel::CommOptions& options() const override { return inner_->options(); }

  WorkHandle all_reduce(const Tensor& tensor, parallel::ReduceOp op) override {
    return posted("all_reduce", inner_->all_reduce(tensor, op));
  }
  WorkHandle reduce_scatter(const Tensor& input, const Tensor& output,
                            parallel::ReduceOp op) override {
    return posted("reduce_scatter", inner_->reduce_scatter(input, output, op));
  }
  WorkHandle all_gather(const Tensor& input, const Tensor& output) override {
    return posted("all_gather", inner_->all_gather(input, output));
  }
  WorkHandle all_to_all_v(const Tensor& input, const std::vector<int64_t>& send_counts,
                          const Tensor& output, const std::vector<int64_t>& recv_counts) override {
    return posted("all_to_all", inner_->all_to_all_v(input, send_counts, output, recv_counts));
  }
  WorkHandle broadcast(const Tensor& tensor, int root) override {
    return posted("broadcast", inner_->broadcast(tensor, root));
  }
  WorkHandle send(const Tensor& tensor, int peer, int tag) override {
    return posted("send", inner_->send(tensor, peer, tag));
  }
  WorkHandle recv(const Tensor& tensor, int peer, int tag) override {
    return posted("recv", inner_->recv(tensor, peer, tag));
  }
  WorkHandle barrier() override { return posted("barrier", inner_->barrier()); }

 private:
  static WorkHandle posted(const char* point, WorkHandle work) {
    fault_point(point);
    return work;
  }

  std::shared_ptr<Communicator> inner_;
};

void wrap(std::shared_ptr<Communicator>& comm) {
  if (comm != nullptr) comm = std::make_shared<FaultPointCommunicator>(comm);
}

}  // namespace

void inject_comm_faults(train::PretrainOptions& options) {
  const char* plan = std::getenv("TRIDENT_FAULT");
  if (plan == nullptr || *plan == '\0') return;
  wrap(options.dp);
  wrap(options.tp);
  wrap(options.ep);
  wrap(options.edp);
  wrap(options.pp);
}

}  // namespace trident::cli
