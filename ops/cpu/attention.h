#pragma once
// The CPU backend's causal softmax attention. Contracts: ops/ops.h.
#include "ops/types.h"

namespace trident::ops::cpu {

using ops::AttentionShape;

void attention_forward(const AttentionShape& shape, const Tensor& q, const Tensor& k,
                       const Tensor& v, Tensor& out, Tensor& lse);
void attention_backward(const AttentionShape& shape, const Tensor& dout, const Tensor& q,
                        const Tensor& k, const Tensor& v, const Tensor& out, const Tensor& lse,
                        Tensor& dq, Tensor& dk, Tensor& dv);

}  // namespace trident::ops::cpu
