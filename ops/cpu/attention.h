#pragma once
// Causal softmax attention with separate q/k head dim and v head dim (MLA: 192 and 128).
// Layout: rows are tokens of `batch` sequences of length `seq` (row = b·seq + s).
#include "runtime/core/tensor.h"

namespace trident::ops::cpu {

struct AttentionShape {
  int64_t batch = 1;
  int64_t seq = 1;
  int64_t heads = 1;
  int64_t qk_dim = 1;
  int64_t v_dim = 1;
  float scale = 1.0f;  // softmax scale (MLA: qk_dim^-0.5 · mscale²)
};

// q, k [B·S, H, Dqk]; v [B·S, H, Dv] -> out [B·S, H, Dv]; lse [B, H, S] saved for backward.
void attention_forward(const AttentionShape& shape, const Tensor& q, const Tensor& k,
                       const Tensor& v, Tensor& out, Tensor& lse);
// Writes dq, dk, dv (overwrite).
void attention_backward(const AttentionShape& shape, const Tensor& dout, const Tensor& q,
                        const Tensor& k, const Tensor& v, const Tensor& out, const Tensor& lse,
                        Tensor& dq, Tensor& dk, Tensor& dv);

}  // namespace trident::ops::cpu
