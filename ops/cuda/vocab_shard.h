#pragma once
// Cross-entropy over one tensor-parallel shard of the vocabulary on the GPU, with the contracts
// of ops/ops.h ("vocabulary shards"). One thread block per token row.
#include <cuda_runtime_api.h>

#include <cstdint>
#include <vector>

#include "runtime/core/tensor.h"

namespace trident::ops::cuda {

void shard_row_max(const Tensor& logits, Tensor& row_max, cudaStream_t stream = nullptr);
void shard_softmax_sums(const Tensor& logits, const Tensor& targets, int64_t shard_begin,
                        const Tensor& row_max, Tensor& sums, cudaStream_t stream = nullptr);
void shard_cross_entropy_backward(const Tensor& logits, const Tensor& targets, const Tensor& lse,
                                  int64_t shard_begin, float grad_scale, Tensor& dlogits,
                                  cudaStream_t stream = nullptr);
// Returns after the partial sums have reached the host (it synchronises `stream`).
std::vector<double> shard_softmax_stats(const Tensor& logits, const Tensor& targets,
                                        int64_t shard_begin, const Tensor& row_max,
                                        cudaStream_t stream = nullptr);
void shard_logprob_backward(const Tensor& logits, const Tensor& targets, int64_t shard_begin,
                            const std::vector<double>& lse, const std::vector<double>& weights,
                            Tensor& dlogits, cudaStream_t stream = nullptr);

}  // namespace trident::ops::cuda
