#pragma once
// The CPU backend's MLA decoding from the latent cache. Contracts: ops/ops.h.
#include "ops/types.h"

namespace trident::ops::cpu {

using ops::LatentAttentionShape;

void latent_attention_decode(const LatentAttentionShape& shape, const Tensor& q,
                             const Tensor& q_rope, const Tensor& kv_b, const Tensor& cache_latent,
                             const Tensor& cache_k_rope, Tensor& out);

}  // namespace trident::ops::cpu
