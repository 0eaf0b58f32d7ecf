#include "parallel/comm/fault_point_communicator.h"

#include "runtime/core/fault_injection.h"

namespace trident::parallel::comm {

namespace {

WorkHandle posted(const char* point, WorkHandle work) {
  fault_point(point);
  return work;
}

}  // namespace

WorkHandle FaultPointCommunicator::all_reduce(const Tensor& tensor, ReduceOp op) {
  return posted("all_reduce", inner_->all_reduce(tensor, op));
}

WorkHandle FaultPointCommunicator::reduce_scatter(const Tensor& input, const Tensor& output,
                                                  ReduceOp op) {
  return posted("reduce_scatter", inner_->reduce_scatter(input, output, op));
}

WorkHandle FaultPointCommunicator::all_gather(const Tensor& input, const Tensor& output) {
  return posted("all_gather", inner_->all_gather(input, output));
}

WorkHandle FaultPointCommunicator::all_to_all_v(const Tensor& input,
                                                const std::vector<int64_t>& send_counts,
                                                const Tensor& output,
                                                const std::vector<int64_t>& recv_counts) {
  return posted("all_to_all", inner_->all_to_all_v(input, send_counts, output, recv_counts));
}

WorkHandle FaultPointCommunicator::broadcast(const Tensor& tensor, int root) {
  return posted("broadcast", inner_->broadcast(tensor, root));
}

WorkHandle FaultPointCommunicator::send(const Tensor& tensor, int peer, int tag) {
  return posted("send", inner_->send(tensor, peer, tag));
}

WorkHandle FaultPointCommunicator::recv(const Tensor& tensor, int peer, int tag) {
  return posted("recv", inner_->recv(tensor, peer, tag));
}

WorkHandle FaultPointCommunicator::barrier() { return posted("barrier", inner_->barrier()); }

}  // namespace trident::parallel::comm
