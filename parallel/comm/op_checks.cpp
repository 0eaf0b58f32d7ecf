#include "parallel/comm/op_checks.h"

#include <numeric>

#include "runtime/core/error.h"

namespace trident::parallel::comm {

namespace {
void check_tensor(const Communicator& comm, const Tensor& tensor, const char* what, CommOp op) {
  TRIDENT_CHECK(tensor.defined(), comm_op_name(op), " on ", comm.name(), ": ", what,
                " is an undefined tensor");
  // MPI reads the CPU backend's device memory as it reads host memory: both are host RAM.
  const bool reachable = tensor.device() == comm.device() ||
                         (in_host_ram(tensor.device()) && in_host_ram(comm.device()));
  TRIDENT_CHECK(reachable, comm_op_name(op), " on ", comm.name(), ": ", what, " ",
                tensor.describe(), " is not on the communicator's device ",
                device_name(comm.device()));
}

// Both tensors on the communicator's device, with one dtype.
void check_input_output(const Communicator& comm, const Tensor& input, const Tensor& output,
                        CommOp op) {
  check_tensor(comm, input, "input", op);
  check_tensor(comm, output, "output", op);
  TRIDENT_CHECK(input.dtype() == output.dtype(), comm_op_name(op), " on ", comm.name(),
                ": input ", input.describe(), " and output ", output.describe(),
                " must have the same dtype");
}

// reduce_scatter (input whole, output a block) and all_gather (the other way round): the whole
// tensor holds one block per member.
void check_blocks(const Communicator& comm, CommOp op, const Tensor& input, const Tensor& output) {
  check_input_output(comm, input, output, op);
  const bool gathers = op == CommOp::AllGather;
  const Tensor& whole = gathers ? output : input;
  const Tensor& block = gathers ? input : output;
  TRIDENT_CHECK(whole.numel() == block.numel() * comm.size(), comm_op_name(op), " on ", comm.name(),
                ": ", gathers ? "output " : "input ", whole.describe(), " must hold ", comm.size(),
                " blocks of ", gathers ? "input " : "output ", block.describe());
}

OpInfo make_info(CommOp op, const Tensor& tensor) {
  OpInfo info;
  info.op = op;
  info.dtype = tensor.dtype();
  info.count = tensor.numel();
  return info;
}

void check_counts(const Communicator& comm, const std::vector<int64_t>& counts, const Tensor& t,
                  const char* which) {
  TRIDENT_CHECK(static_cast<int>(counts.size()) == comm.size(), "all_to_all_v on ", comm.name(),
                ": ", which, " has ", counts.size(), " entries, the group has ", comm.size());
  for (int64_t c : counts) {
    TRIDENT_CHECK(c >= 0, "all_to_all_v on ", comm.name(), ": negative ", which, " entry ", c);
  }
  const int64_t total = std::accumulate(counts.begin(), counts.end(), int64_t{0});
  TRIDENT_CHECK(total == t.numel(), "all_to_all_v on ", comm.name(), ": ", which, " sum to ",
                total, " elements but the tensor ", t.describe(), " holds ", t.numel());
}
}  // namespace

OpInfo check_all_reduce(const Communicator& comm, const Tensor& tensor) {
  check_tensor(comm, tensor, "tensor", CommOp::AllReduce);
  return make_info(CommOp::AllReduce, tensor);
}

OpInfo check_reduce_scatter(const Communicator& comm, const Tensor& input, const Tensor& output) {
  check_blocks(comm, CommOp::ReduceScatter, input, output);
  return make_info(CommOp::ReduceScatter, input);
}

OpInfo check_all_gather(const Communicator& comm, const Tensor& input, const Tensor& output) {
  check_blocks(comm, CommOp::AllGather, input, output);
  return make_info(CommOp::AllGather, input);
}

OpInfo check_all_to_all_v(const Communicator& comm, const Tensor& input,
                          const std::vector<int64_t>& send_counts, const Tensor& output,
                          const std::vector<int64_t>& recv_counts) {
  check_input_output(comm, input, output, CommOp::AllToAllV);
  check_counts(comm, send_counts, input, "send_counts");
  check_counts(comm, recv_counts, output, "recv_counts");
  return make_info(CommOp::AllToAllV, input);
}

OpInfo check_broadcast(const Communicator& comm, const Tensor& tensor, int root) {
  check_tensor(comm, tensor, "tensor", CommOp::Broadcast);
  TRIDENT_CHECK(root >= 0 && root < comm.size(), "broadcast on ", comm.name(), ": root ", root,
                " is not a member of a group of ", comm.size());
  OpInfo info = make_info(CommOp::Broadcast, tensor);
  info.peer = root;
  return info;
}

OpInfo check_point_to_point(const Communicator& comm, CommOp op, const Tensor& tensor, int peer,
                            int tag) {
  check_tensor(comm, tensor, "tensor", op);
  TRIDENT_CHECK(peer >= 0 && peer < comm.size() && peer != comm.rank(), comm_op_name(op), " on ",
                comm.name(), ": peer ", peer, " must be another member of a group of ",
                comm.size());
  TRIDENT_CHECK(tag >= 0 && tag <= kMaxUserTag, comm_op_name(op), " on ", comm.name(), ": tag ",
                tag, " must be in [0, ", kMaxUserTag, "]");
  OpInfo info = make_info(op, tensor);
  info.peer = peer;
  return info;
}

}  // namespace trident::parallel::comm
