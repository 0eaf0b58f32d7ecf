#pragma once
// The CPU backend's token-level cross-entropy with an ignore index. Contracts: ops/ops.h.
#include <cstdint>
#include <vector>

#include "ops/types.h"

namespace trident::ops::cpu {

using ops::CrossEntropyResult;
using ops::kIgnoreIndex;
using ops::TokenScore;

CrossEntropyResult cross_entropy_forward(const Tensor& logits, const Tensor& targets, Tensor& lse);
void cross_entropy_backward(const Tensor& logits, const Tensor& targets, const Tensor& lse,
                            float grad_scale, Tensor& dlogits);
void token_logprobs(const Tensor& logits, const Tensor& targets, Tensor& logprobs);
std::vector<TokenScore> token_scores(const Tensor& logits, const Tensor& targets);
void token_logprobs_backward(const Tensor& logits, const Tensor& targets,
                             const std::vector<double>& weights, Tensor& dlogits);

}  // namespace trident::ops::cpu
