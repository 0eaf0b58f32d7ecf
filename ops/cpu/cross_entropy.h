#pragma once
// Token-level cross-entropy with an ignore index / loss mask.
#include <cstdint>

#include "ops/types.h"

namespace trident::ops::cpu {

using ops::CrossEntropyResult;
using ops::kIgnoreIndex;

// logits [T, V]; targets [T] (I32, kIgnoreIndex = skip). lse [T] saved for backward.
CrossEntropyResult cross_entropy_forward(const Tensor& logits, const Tensor& targets, Tensor& lse);
// dlogits = (softmax − onehot) · grad_scale for counted tokens, 0 for ignored (overwrite).
// grad_scale is typically 1 / (total counted tokens in the global batch).
void cross_entropy_backward(const Tensor& logits, const Tensor& targets, const Tensor& lse,
                            float grad_scale, Tensor& dlogits);
// log p(target) per token (for scoring and GRPO); ignored tokens get 0.
void token_logprobs(const Tensor& logits, const Tensor& targets, Tensor& logprobs);

}  // namespace trident::ops::cpu
