#include "parallel/comm/communicator.h"

#include <sstream>

namespace trident::parallel::comm {

const char* comm_op_name(CommOp op) {
  switch (op) {
    case CommOp::AllReduce: return "all_reduce";
    case CommOp::ReduceScatter: return "reduce_scatter";
    case CommOp::AllGather: return "all_gather";
    case CommOp::AllToAllV: return "all_to_all_v";
    case CommOp::Broadcast: return "broadcast";
    case CommOp::Send: return "send";
    case CommOp::Recv: return "recv";
    case CommOp::Barrier: return "barrier";
  }
  return "?";
}

const char* reduce_op_name(ReduceOp op) { return op == ReduceOp::Sum ? "sum" : "max"; }

std::string OpInfo::describe() const {
  std::ostringstream out;
  out << comm_op_name(op) << " #" << seq;
  if (op != CommOp::Barrier) out << " (" << dtype_name(dtype) << " × " << count;
  if (op == CommOp::Send) out << " to rank " << peer;
  if (op == CommOp::Recv) out << " from rank " << peer;
  if (op == CommOp::Broadcast) out << " from root " << peer;
  if (op != CommOp::Barrier) out << ")";
  return out.str();
}

}  // namespace trident::parallel::comm
