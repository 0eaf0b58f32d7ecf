#pragma once
// Gathers and weighted sums of token rows by index on the GPU (the expert-parallel dispatch and
// combine), with the contracts of ops/ops.h ("rows by index").
#include <cuda_runtime_api.h>

#include <cstdint>

#include "runtime/core/tensor.h"

namespace trident::ops::cuda {

void gather_rows(const Tensor& x, const Tensor& index, Tensor& out, cudaStream_t stream = nullptr);
void combine_rows(const Tensor& rows, const Tensor& slot_row, int64_t top_k, const Tensor& weights,
                  int64_t first_token, Tensor& out, cudaStream_t stream = nullptr);
void combine_rows_backward(const Tensor& dout, const Tensor& rows, const Tensor& weights,
                           const Tensor& slot_row, int64_t first_token, Tensor& d_rows,
                           Tensor& d_weights, cudaStream_t stream = nullptr);

}  // namespace trident::ops::cuda
