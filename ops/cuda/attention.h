#pragma once
// Causal softmax attention on the GPU with the contracts of ops/ops.h: separate q/k
// and v head dims (MLA: 192 and 128), rows are tokens of `batch` sequences of length `seq`,
// the logsumexp of each query row is saved for backward.
//
// The kernels are plain and exact rather than fast: one thread block per (sequence, head, row),
// one warp per dot product, scores recomputed instead of stored, fp32 throughout. Head dims up
// to 512 are supported.
#include <cuda_runtime_api.h>

#include "ops/types.h"

namespace trident::ops::cuda {

// The settings/shape types are the shared ones of ops/types.h, so argument-dependent lookup
// also finds the op API (ops/ops.h): call these functions qualified (cuda::...).

using ops::AttentionShape;

// q, k [B·S, H, Dqk]; v [B·S, H, Dv] -> out [B·S, H, Dv]; lse [B, H, S].
void attention_forward(const AttentionShape& shape, const Tensor& q, const Tensor& k,
                       const Tensor& v, Tensor& out, Tensor& lse, cudaStream_t stream = nullptr);
// Writes dq, dk, dv (overwrite).
void attention_backward(const AttentionShape& shape, const Tensor& dout, const Tensor& q,
                        const Tensor& k, const Tensor& v, const Tensor& out, const Tensor& lse,
                        Tensor& dq, Tensor& dk, Tensor& dv, cudaStream_t stream = nullptr);

}  // namespace trident::ops::cuda
