#include "parallel/comm/forwarding_communicator.h"

#include "runtime/core/error.h"

namespace trident::parallel::comm {

ForwardingCommunicator::ForwardingCommunicator(std::shared_ptr<Communicator> inner)
    : inner_(std::move(inner)) {
  TRIDENT_CHECK(inner_ != nullptr, "a communicator decorator needs a communicator to wrap");
}

WorkHandle ForwardingCommunicator::decorate(const std::function<WorkHandle()>& post,
                                            const Exchange&) {
  return post();
}

WorkHandle ForwardingCommunicator::forward(const std::function<WorkHandle()>& post) {
  static const std::vector<int64_t> kNoCounts;
  return decorate(post, Exchange{kNoCounts, kNoCounts});
}

WorkHandle ForwardingCommunicator::all_reduce(const Tensor& tensor, ReduceOp op) {
  return forward([&] { return inner_->all_reduce(tensor, op); });
}

WorkHandle ForwardingCommunicator::reduce_scatter(const Tensor& input, const Tensor& output,
                                                  ReduceOp op) {
  return forward([&] { return inner_->reduce_scatter(input, output, op); });
}

WorkHandle ForwardingCommunicator::all_gather(const Tensor& input, const Tensor& output) {
  return forward([&] { return inner_->all_gather(input, output); });
}

WorkHandle ForwardingCommunicator::all_to_all_v(const Tensor& input,
                                                const std::vector<int64_t>& send_counts,
                                                const Tensor& output,
                                                const std::vector<int64_t>& recv_counts) {
  return decorate([&] { return inner_->all_to_all_v(input, send_counts, output, recv_counts); },
                  Exchange{send_counts, recv_counts});
}

WorkHandle ForwardingCommunicator::broadcast(const Tensor& tensor, int root) {
  return forward([&] { return inner_->broadcast(tensor, root); });
}

WorkHandle ForwardingCommunicator::send(const Tensor& tensor, int peer, int tag) {
  return forward([&] { return inner_->send(tensor, peer, tag); });
}

WorkHandle ForwardingCommunicator::recv(const Tensor& tensor, int peer, int tag) {
  return forward([&] { return inner_->recv(tensor, peer, tag); });
}

WorkHandle ForwardingCommunicator::barrier() {
  return forward([&] { return inner_->barrier(); });
}

}  // namespace trident::parallel::comm
