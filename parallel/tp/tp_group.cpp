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
    TRIDENT_USER_CHECK(comm->device() == Device::CPU,
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
  int64_t total = 0;
  for (const Tensor* t : tensors) total += t->numel();
  Tensor packed = Tensor::empty({total});
  float* dst = packed.data<float>();
  for (const Tensor* t : tensors) dst = std::copy_n(t->data<float>(), t->numel(), dst);
  tp_all_reduce(tp, packed);
  const float* src = packed.data<float>();
  for (Tensor* t : tensors) {
    std::copy_n(src, t->numel(), t->data<float>());
    src += t->numel();
  }
}

}  // namespace trident::parallel::tp
