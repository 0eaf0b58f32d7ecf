#pragma once
// MLA decoding from the latent cache on the GPU, with the contract of ops/ops.h: one thread
// block per (token, head), the query taken into the latent space in shared memory, the scores
// of the cached positions in stream-ordered scratch, fp32 arithmetic (the CPU oracle sums in
// double: compare with a tolerance).
#include <cuda_runtime_api.h>

#include "ops/types.h"

namespace trident::ops::cuda {

using ops::LatentAttentionShape;

void latent_attention_decode(const LatentAttentionShape& shape, const Tensor& q,
                             const Tensor& q_rope, const Tensor& kv_b, const Tensor& cache_latent,
                             const Tensor& cache_k_rope, Tensor& out,
                             cudaStream_t stream = nullptr);

}  // namespace trident::ops::cuda
