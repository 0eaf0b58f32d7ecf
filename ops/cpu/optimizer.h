#pragma once
// The CPU backend's optimizer ops: AdamW and the reductions the global gradient norm and the
// finiteness checks need (OpenMP over elements). Contracts: ops/ops.h.
#include <cstdint>
#include <vector>

#include "ops/types.h"
#include "runtime/core/tensor.h"

namespace trident::ops::cpu {

void adamw_update(const AdamWSettings& settings, const AdamWStep& step, Tensor& param,
                  const Tensor& grad, Tensor& exp_avg, Tensor& exp_avg_sq,
                  Tensor* nonfinite = nullptr);
double sum_of_squares(const std::vector<Tensor>& pieces);
std::vector<int64_t> count_nonfinite(const std::vector<Tensor>& pieces);

}  // namespace trident::ops::cpu
