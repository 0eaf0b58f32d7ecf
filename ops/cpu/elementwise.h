#pragma once
// The CPU backend's element-wise and normalisation ops (OpenMP over rows). Contracts:
// ops/ops.h.
#include "runtime/core/tensor.h"

namespace trident::ops::cpu {

// shard_begin: ops::kWholeTable (-1), or the first id of a tensor-parallel shard (ops/ops.h).
void embedding_forward(const Tensor& ids, const Tensor& table, Tensor& out,
                       int64_t shard_begin = -1);
void embedding_backward_weight(const Tensor& ids, const Tensor& dout, Tensor& dtable,
                               int64_t shard_begin = -1);

void rmsnorm_forward(const Tensor& x, const Tensor& w, float eps, Tensor& y, Tensor& rstd);
void rmsnorm_backward_input(const Tensor& dy, const Tensor& x, const Tensor& w, const Tensor& rstd,
                            Tensor& dx, bool accumulate = false);
void rmsnorm_backward_weight(const Tensor& dy, const Tensor& x, const Tensor& rstd, Tensor& dw);

void swiglu_forward(const Tensor& gate, const Tensor& up, Tensor& out);
void swiglu_backward(const Tensor& dout, const Tensor& gate, const Tensor& up, Tensor& dgate,
                     Tensor& dup);

void axpy(float alpha, const Tensor& x, Tensor& y);
void scale(const Tensor& x, float factor, Tensor& y);
void copy_columns(const Tensor& src, int64_t src_width, int64_t src_begin, Tensor& dst,
                  int64_t dst_width, int64_t dst_begin, int64_t count, bool accumulate = false);
void round_to_bf16(Tensor& x);
void convert(const Tensor& src, Tensor& dst);

}  // namespace trident::ops::cpu
