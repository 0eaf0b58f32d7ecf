#pragma once
// The DeepSeek-V3 router and the expert permutation on the GPU, with the contracts of
// ops/ops.h. Up to 256 experts, top_k ≤ 32 and n_group ≤ 32; one warp per token.
#include <cuda_runtime_api.h>

#include <cstdint>
#include <vector>

#include "ops/types.h"

namespace trident::ops::cuda {

// The settings/shape types are the shared ones of ops/types.h, so argument-dependent lookup
// also finds the op API (ops/ops.h): call these functions qualified (cuda::...).

using ops::RouterSettings;

constexpr int64_t kMaxRouterExperts = 256;

// logits [T, E] + bias [E] -> indices [T, k] (I32), weights [T, k], scores [T, E].
void router_forward(const RouterSettings& settings, const Tensor& logits, const Tensor& bias,
                    Tensor& indices, Tensor& weights, Tensor& scores,
                    cudaStream_t stream = nullptr);
// dweights [T, k] -> dlogits [T, E] (overwrite). Selection is not differentiated.
void router_backward(const RouterSettings& settings, const Tensor& dweights, const Tensor& indices,
                     const Tensor& scores, Tensor& dlogits, cudaStream_t stream = nullptr);

// The permutation by expert (ops/types.h), built on the device: slot_to_row and row_to_token
// are CUDA tensors, tokens_per_expert a host copy. Rows of one expert keep token order
// (stable), exactly as the CPU plan.
using ops::PermutePlan;

// Builds the plan on the GPU from indices [T, k] (I32, CUDA). Returns after copying the
// per-expert counts to the host (the one synchronisation of the MoE forward).
// Counts on the host: one synchronisation.
std::vector<int64_t> count_per_expert(const Tensor& indices, int64_t experts,
                                      cudaStream_t stream = nullptr);
PermutePlan make_permute_plan(const Tensor& indices, int64_t experts,
                              cudaStream_t stream = nullptr);
// out [T·k, D] = x rows in expert order.
void permute_forward(const PermutePlan& plan, const Tensor& x, Tensor& out,
                     cudaStream_t stream = nullptr);
// dx [T, D] (=|+=) sum of the rows that came from each token.
void permute_backward(const PermutePlan& plan, const Tensor& dout, Tensor& dx,
                      bool accumulate = false, cudaStream_t stream = nullptr);
// out [T, D] = Σ_j weights[t, j] · y[slot_to_row[t·k+j]]
void unpermute_forward(const PermutePlan& plan, const Tensor& y, const Tensor& weights,
                       Tensor& out, cudaStream_t stream = nullptr);
// dy [T·k, D] = weights · dout rows; dweights [T, k] = <dout[t], y[row]>.
void unpermute_backward(const PermutePlan& plan, const Tensor& dout, const Tensor& y,
                        const Tensor& weights, Tensor& dy, Tensor& dweights,
                        cudaStream_t stream = nullptr);

}  // namespace trident::ops::cuda
