#pragma once
// Every routed expert's product of a grouped linear layer in one launch: cuBLAS's grouped GEMM
// (cublasGemmGroupedBatchedEx, opened on first use: blas_api.h), each expert a group of one
// problem with its own row count. ops/cuda/linear.cu falls back to one cuBLASLt matmul per
// expert wherever this declines.
#include <cuda_runtime_api.h>

#include <vector>

#include "ops/cuda/matmul.h"

namespace trident::ops::cuda {

// Runs every product in one cuBLAS call on `stream`, fp32 accumulation, and returns true; or
// runs nothing and returns false where that cannot be done here: fewer than two products,
// operands not all f32 or all bf16, an empty dimension, sizes beyond int, no cuBLAS with the
// function, TRIDENT_CUDA_GROUPED_GEMM=0, or cuBLAS declining the dtype (remembered, with one
// warning). Any other cuBLAS error is thrown.
bool grouped_gemm(const std::vector<Matmul>& products, cudaStream_t stream);

}  // namespace trident::ops::cuda
