#pragma once
// The CPU backend's sequence-wise balance loss. Contracts: ops/ops.h.
#include "ops/types.h"

namespace trident::ops::cpu {

using ops::BalanceLossShape;

double balance_loss_forward(const BalanceLossShape& shape, const Tensor& scores,
                            const Tensor& indices, Tensor& per_expert);
void balance_loss_backward(const BalanceLossShape& shape, float coef, const Tensor& scores,
                           const Tensor& per_expert, Tensor& dlogits);

}  // namespace trident::ops::cpu
