#pragma once
// The tensor-parallel (TP) group as the model's layers see it, and the two conjugate
// operators every Megatron-style TP layer is made of:
//
//   f  "enter the TP region":  forward identity,    backward all-reduce (sum) over TP
//   g  "leave the TP region":  forward all-reduce,  backward identity
//
// A column-parallel linear (this rank holds a block of output rows of W) is f followed by a
// local linear: its input is replicated, so each rank's input gradient is a partial sum.
// A row-parallel linear (this rank holds a block of input columns of W) is a local linear
// followed by g: each rank's output is a partial sum. Between the two the activations are
// split and no communication happens. Outside TP regions every rank holds identical
// activations and identical activation gradients.
//
// A TpGroup with size 1 (the default) is one rank: every operation is a no-op and the layers
// run exactly the single-rank arithmetic.
#include <cstdint>
#include <vector>

#include "parallel/comm/communicator.h"
#include "runtime/core/tensor.h"

namespace trident::parallel::tp {

// Counts of what the TP operators sent (all-reduces and reduced f32 elements per rank), so
// tests and benchmarks can hold the layers to the communication plan of docs/tensor-parallel.md.
struct TpTraffic {
  int64_t all_reduces = 0;
  int64_t elements = 0;
};

struct TpGroup {
  comm::Communicator* comm = nullptr;  // null only when size == 1
  int64_t rank = 0;
  int64_t size = 1;
  TpTraffic* traffic = nullptr;  // optional counters (owned by the caller)

  bool split() const { return size > 1; }
};

// Checks comm against (rank, size): a null comm is allowed only for one rank.
TpGroup make_tp_group(comm::Communicator* comm, int64_t rank, int64_t size,
                      TpTraffic* traffic = nullptr);

// In place over the group (blocking); a no-op for one rank.
void tp_all_reduce(const TpGroup& tp, Tensor& tensor, comm::ReduceOp op = comm::ReduceOp::Sum);
// Sums several tensors over the group with one all-reduce: they are packed into one buffer,
// reduced and unpacked (fewer, larger messages than one all-reduce each).
void tp_all_reduce_packed(const TpGroup& tp, const std::vector<Tensor*>& tensors);

// f's backward: the gradient of a replicated input that fed TP-split computation.
inline void tp_enter_backward(const TpGroup& tp, Tensor& dx) { tp_all_reduce(tp, dx); }
// g's forward: the output of a row-parallel computation.
inline void tp_leave_forward(const TpGroup& tp, Tensor& y) { tp_all_reduce(tp, y); }

}  // namespace trident::parallel::tp
