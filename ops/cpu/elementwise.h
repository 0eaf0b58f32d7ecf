#pragma once
// Element-wise and normalisation ops (OpenMP over rows).
#include "runtime/core/tensor.h"

namespace trident::ops::cpu {

// out[T, D] = table[ids[t], :]; ids are I32 in [0, V).
void embedding_forward(const Tensor& ids, const Tensor& table, Tensor& out);
// dtable[V, D] += scatter of dout rows by ids.
void embedding_backward_weight(const Tensor& ids, const Tensor& dout, Tensor& dtable);

// RMSNorm over the last dimension: y = x / sqrt(mean(x²) + eps) · w.
// rstd[T] (one per row) is saved for backward.
void rmsnorm_forward(const Tensor& x, const Tensor& w, float eps, Tensor& y, Tensor& rstd);
void rmsnorm_backward_input(const Tensor& dy, const Tensor& x, const Tensor& w, const Tensor& rstd,
                            Tensor& dx, bool accumulate = false);
void rmsnorm_backward_weight(const Tensor& dy, const Tensor& x, const Tensor& rstd, Tensor& dw);

// SwiGLU: out = silu(gate) · up, all [T, F].
void swiglu_forward(const Tensor& gate, const Tensor& up, Tensor& out);
void swiglu_backward(const Tensor& dout, const Tensor& gate, const Tensor& up, Tensor& dgate,
                     Tensor& dup);

// y += alpha · x (same numel)
void axpy(float alpha, const Tensor& x, Tensor& y);
// y = x · scale
void scale(const Tensor& x, float factor, Tensor& y);

}  // namespace trident::ops::cpu
