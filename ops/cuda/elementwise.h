#pragma once
// Element-wise and normalisation ops on the GPU: the contracts of ops/ops.h on CUDA
// tensors, enqueued on `stream`. Activations and gradients are f32; the embedding table and the
// RMSNorm weight may also be bf16 (read as fp32).
#include <cuda_runtime_api.h>

#include "runtime/core/tensor.h"

namespace trident::ops::cuda {

// out[T, D] = table[ids[t], :]; ids are I32 in [0, V). shard_begin ≥ 0: a tensor-parallel
// shard holding [shard_begin, shard_begin + V), other ids give zero rows (ops/ops.h).
void embedding_forward(const Tensor& ids, const Tensor& table, Tensor& out,
                       int64_t shard_begin = -1, cudaStream_t stream = nullptr);
// dtable[V, D] += scatter of dout rows by ids (atomic adds: repeated ids sum in any order).
void embedding_backward_weight(const Tensor& ids, const Tensor& dout, Tensor& dtable,
                               int64_t shard_begin = -1, cudaStream_t stream = nullptr);

// y = x / sqrt(mean(x²) + eps) · w over the last dimension; rstd[T] saved for backward.
void rmsnorm_forward(const Tensor& x, const Tensor& w, float eps, Tensor& y, Tensor& rstd,
                     cudaStream_t stream = nullptr);
void rmsnorm_backward_input(const Tensor& dy, const Tensor& x, const Tensor& w, const Tensor& rstd,
                            Tensor& dx, bool accumulate = false, cudaStream_t stream = nullptr);
// dw[D] += Σ_t dy · x · rstd
void rmsnorm_backward_weight(const Tensor& dy, const Tensor& x, const Tensor& rstd, Tensor& dw,
                             cudaStream_t stream = nullptr);

// out = silu(gate) · up, all [T, F].
void swiglu_forward(const Tensor& gate, const Tensor& up, Tensor& out,
                    cudaStream_t stream = nullptr);
void swiglu_backward(const Tensor& dout, const Tensor& gate, const Tensor& up, Tensor& dgate,
                     Tensor& dup, cudaStream_t stream = nullptr);

// y += alpha · x (same numel)
void axpy(float alpha, const Tensor& x, Tensor& y, cudaStream_t stream = nullptr);
// Columns of row-major matrices with the same rows (ops/ops.h).
void copy_columns(const Tensor& src, int64_t src_width, int64_t src_begin, Tensor& dst,
                  int64_t dst_width, int64_t dst_begin, int64_t count, bool accumulate = false,
                  cudaStream_t stream = nullptr);
// y = x · factor (y may alias x)
void scale(const Tensor& x, float factor, Tensor& y, cudaStream_t stream = nullptr);
// x := the nearest bf16 values (round to nearest even), in place.
void round_to_bf16(Tensor& x, cudaStream_t stream = nullptr);
// dst := src: f32 -> bf16 (nearest even), bf16 -> f32, or a copy when the dtypes agree.
void convert(const Tensor& src, Tensor& dst, cudaStream_t stream = nullptr);

}  // namespace trident::ops::cuda
