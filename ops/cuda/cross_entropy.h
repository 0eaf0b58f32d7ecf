#pragma once
// Token-level cross-entropy on the GPU with the contracts of ops/ops.h.
// One thread block per token row; the vocabulary is read once per pass (online logsumexp).
#include <cuda_runtime_api.h>

#include <vector>

#include "ops/types.h"

namespace trident::ops::cuda {

// The settings/shape types are the shared ones of ops/types.h, so argument-dependent lookup
// also finds the op API (ops/ops.h): call these functions qualified (cuda::...).

using ops::CrossEntropyResult;
using ops::kIgnoreIndex;
using ops::TokenScore;

// logits [T, V] (f32); targets [T] (I32, kIgnoreIndex = skip); lse [T] saved for backward.
// Returns after the loss sum has reached the host (it synchronises `stream`); a target outside
// [0, V) that is not the ignore index is reported as an error.
CrossEntropyResult cross_entropy_forward(const Tensor& logits, const Tensor& targets, Tensor& lse,
                                         cudaStream_t stream = nullptr);
// dlogits = (softmax − onehot) · grad_scale for counted tokens, 0 for ignored (overwrite).
void cross_entropy_backward(const Tensor& logits, const Tensor& targets, const Tensor& lse,
                            float grad_scale, Tensor& dlogits, cudaStream_t stream = nullptr);
// log p(target) per token; ignored tokens get 0.
void token_logprobs(const Tensor& logits, const Tensor& targets, Tensor& logprobs,
                    cudaStream_t stream = nullptr);
// GRPO's scores: a block per token, sums in double (libm-like exp in double); returns after the
// scores have reached the host (it synchronises `stream`).
std::vector<TokenScore> token_scores(const Tensor& logits, const Tensor& targets,
                                     cudaStream_t stream = nullptr);
// dlogits[t] = weights[t] · (onehot − softmax) (overwrite); the weights are copied to the device.
void token_logprobs_backward(const Tensor& logits, const Tensor& targets,
                             const std::vector<double>& weights, Tensor& dlogits,
                             cudaStream_t stream = nullptr);

}  // namespace trident::ops::cuda
