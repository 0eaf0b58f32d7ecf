#pragma once
// The CPU backend's DeepSeek-V3 / V2 router and the token permutation that feeds the experts.
// Contracts: ops/ops.h.
#include <vector>

#include "ops/types.h"

namespace trident::ops::cpu {

using ops::PermutePlan;
using ops::RouterSettings;

void router_forward(const RouterSettings& settings, const Tensor& logits, const Tensor& bias,
                    Tensor& indices, Tensor& weights, Tensor& scores);
void router_backward(const RouterSettings& settings, const Tensor& dweights, const Tensor& indices,
                     const Tensor& scores, Tensor& dlogits);

std::vector<int64_t> count_per_expert(const Tensor& indices, int64_t experts);
PermutePlan make_permute_plan(const Tensor& indices, int64_t experts);
void permute_forward(const PermutePlan& plan, const Tensor& x, Tensor& out);
void permute_backward(const PermutePlan& plan, const Tensor& dout, Tensor& dx,
                      bool accumulate = false);
void unpermute_forward(const PermutePlan& plan, const Tensor& y, const Tensor& weights,
                       Tensor& out);
void unpermute_backward(const PermutePlan& plan, const Tensor& dout, const Tensor& y,
                        const Tensor& weights, Tensor& dy, Tensor& dweights);

}  // namespace trident::ops::cpu
