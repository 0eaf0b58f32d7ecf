#pragma once
// The CPU backend's cross-entropy over one tensor-parallel shard of the vocabulary. Contracts:
// ops/ops.h ("vocabulary shards").
#include <cstdint>
#include <vector>

#include "runtime/core/tensor.h"

namespace trident::ops::cpu {

void shard_row_max(const Tensor& logits, Tensor& row_max);
void shard_softmax_sums(const Tensor& logits, const Tensor& targets, int64_t shard_begin,
                        const Tensor& row_max, Tensor& sums);
void shard_cross_entropy_backward(const Tensor& logits, const Tensor& targets, const Tensor& lse,
                                  int64_t shard_begin, float grad_scale, Tensor& dlogits);
std::vector<double> shard_softmax_stats(const Tensor& logits, const Tensor& targets,
                                        int64_t shard_begin, const Tensor& row_max);
void shard_logprob_backward(const Tensor& logits, const Tensor& targets, int64_t shard_begin,
                            const std::vector<double>& lse, const std::vector<double>& weights,
                            Tensor& dlogits);

}  // namespace trident::ops::cpu
