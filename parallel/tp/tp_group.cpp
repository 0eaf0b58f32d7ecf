#include "parallel/tp/tp_group.h"

#include <algorithm>

#include "runtime/core/error.h"

namespace trident::parallel::tp {

TpGroup make_tp_group(comm::Communicator* comm, int64_t rank, int64_t size, TpTraffic* traffic) {
  TRIDENT_USER_CHECK(size >= 1 && rank >= 0 && rank < size, "tensor parallel rank ", rank,
                     " of size ", size, " is not valid (need 0 ≤ tp_rank < tp_size)");
  if (comm == nullptr) {
    TRIDENT_USER_CHECK(size == 1, "tensor parallel size ", size,
                       " needs a TP communicator (only tp_size 1 runs without one)");
  } else {
    TRIDENT_USER_CHECK(comm->size() == size && comm->rank() == rank, "the TP communicator '",
                       comm->name(), "' has rank ", comm->rank(), " of ", comm->size(),
                       ", but the model was asked for TP rank ", rank, " of ", size);
    TRIDENT_USER_CHECK(in_host_ram(comm->device()),
                       "the CPU model's TP communicator must work on CPU tensors");
  }
  return TpGroup{comm, rank, size, traffic};
}

void tp_all_reduce(const TpGroup& tp, Tensor& tensor, comm::ReduceOp op) {
  if (!tp.split()) return;
  TRIDENT_CHECK(tp.comm != nullptr, "TP group of size ", tp.size, " without a communicator");
  tp.comm->all_reduce(tensor, op)->wait();
  if (tp.traffic != nullptr) {
    ++tp.traffic->all_reduces;
    tp.traffic->elements += tensor.numel();
  }
}

void tp_all_reduce_packed(const TpGroup& tp, const std::vector<Tensor*>& tensors) {
  if (!tp.split()) return;
  if (tensors.empty()) return;
  int64_t total = 0;
  for (const Tensor* t : tensors) total += t->numel();
  // Packed where the tensors live, by device copies of whole tensors.
  Tensor packed = Tensor::empty({total}, DType::F32, tensors.front()->device());
  int64_t offset = 0;
  for (const Tensor* t : tensors) {
    packed.narrow(offset, offset + t->numel()).copy_from(*t);
    offset += t->numel();
  }
  tp_all_reduce(tp, packed);
  offset = 0;
  for (Tensor* t : tensors) {
    t->copy_from(packed.narrow(offset, offset + t->numel()));
    offset += t->numel();
  }
}

}  // namespace trident::parallel::tp
