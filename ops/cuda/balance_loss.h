#pragma once
// The sequence-wise balance loss on the GPU, with the contracts of ops/ops.h: the forward runs a
// block per sequence (counts in shared memory, P summed per expert down the tokens in order, so
// in the CPU's order) and returns the loss with one synchronisation; the backward a warp per
// token, in double like the CPU.
#include <cuda_runtime_api.h>

#include "ops/types.h"

namespace trident::ops::cuda {

using ops::BalanceLossShape;

double balance_loss_forward(const BalanceLossShape& shape, const Tensor& scores,
                            const Tensor& indices, Tensor& per_expert,
                            cudaStream_t stream = nullptr);
void balance_loss_backward(const BalanceLossShape& shape, float coef, const Tensor& scores,
                           const Tensor& per_expert, Tensor& dlogits,
                           cudaStream_t stream = nullptr);

}  // namespace trident::ops::cuda
