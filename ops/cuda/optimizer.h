#pragma once
// The optimizer's ops on the GPU: the contracts of ops/ops.h on CUDA tensors, enqueued on
// `stream`. sum_of_squares and count_nonfinite return host values, so they synchronise the
// stream once per call (not once per piece).
#include <cuda_runtime_api.h>

#include <cstdint>
#include <vector>

#include "ops/types.h"
#include "runtime/core/tensor.h"

namespace trident::ops::cuda {

// One AdamW step, element-wise, with the scalars of ops::adamw_scalars (the CPU's numbers).
void adamw_update(const AdamWSettings& settings, const AdamWStep& step, Tensor& param,
                  const Tensor& grad, Tensor& exp_avg, Tensor& exp_avg_sq,
                  Tensor* nonfinite = nullptr, cudaStream_t stream = nullptr);
// Σ x² in double: a block per chunk of 64K elements of each piece writes its partial sum,
// then one block adds the partials in a fixed order; deterministic for given piece sizes.
double sum_of_squares(const std::vector<Tensor>& pieces, cudaStream_t stream = nullptr);
// NaN and infinite elements per piece, counted into one device array and copied back once.
std::vector<int64_t> count_nonfinite(const std::vector<Tensor>& pieces,
                                     cudaStream_t stream = nullptr);

}  // namespace trident::ops::cuda
