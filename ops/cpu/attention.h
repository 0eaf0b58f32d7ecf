#pragma once
// Causal softmax attention with separate q/k head dim and v head dim (MLA: 192 and 128).
// Layout: rows are tokens of `batch` sequences of length `seq` (row = b·seq + s).
#include "ops/types.h"

namespace trident::ops::cpu {

using ops::AttentionShape;

// q, k [B·S, H, Dqk]; v [B·S, H, Dv] -> out [B·S, H, Dv]; lse [B, H, S] saved for backward.
void attention_forward(const AttentionShape& shape, const Tensor& q, const Tensor& k,
                       const Tensor& v, Tensor& out, Tensor& lse);
// Writes dq, dk, dv (overwrite).
void attention_backward(const AttentionShape& shape, const Tensor& dout, const Tensor& q,
                        const Tensor& k, const Tensor& v, const Tensor& out, const Tensor& lse,
                        Tensor& dq, Tensor& dk, Tensor& dv);

}  // namespace trident::ops::cpu
