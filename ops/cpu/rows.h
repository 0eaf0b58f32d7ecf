#pragma once
// The CPU backend's gathers and weighted sums of token rows by index (the expert-parallel
// dispatch and combine). Contracts: ops/ops.h ("rows by index").
#include <cstdint>

#include "runtime/core/tensor.h"

namespace trident::ops::cpu {

void gather_rows(const Tensor& x, const Tensor& index, Tensor& out);
void combine_rows(const Tensor& rows, const Tensor& slot_row, int64_t top_k, const Tensor& weights,
                  int64_t first_token, Tensor& out);
void combine_rows_backward(const Tensor& dout, const Tensor& rows, const Tensor& weights,
                           const Tensor& slot_row, int64_t first_token, Tensor& d_rows,
                           Tensor& d_weights);

}  // namespace trident::ops::cpu
