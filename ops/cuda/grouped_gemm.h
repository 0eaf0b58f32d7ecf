#pragma once
// Every routed expert's product of a grouped linear layer in one launch: cuBLAS's grouped GEMM
// (cublasGemmGroupedBatchedEx, opened on first use: blas_api.h), each expert a group of one
// problem with its own row count. ops/cuda/linear.cu falls back to one cuBLASLt matmul per
// expert wherever this declines.
#include <cuda_runtime_api.h>

#include <cstdint>
#include <vector>

#include "runtime/core/dtype.h"

namespace trident::ops::cuda {

// One row-major product C[m, n] = alpha · op(A)[m, k] · op(B)[k, n] + beta · C on raw device
// pointers, A, B and C all of the call's dtype.
struct GemmProblem {
  bool trans_a = false;
  bool trans_b = false;
  int64_t m = 0;
  int64_t n = 0;
  int64_t k = 0;
  float alpha = 1.0f;
  float beta = 0.0f;
  const void* a = nullptr;
  const void* b = nullptr;
  void* c = nullptr;
};

// Runs every problem in one cuBLAS call on `stream`, fp32 accumulation, and returns true; or
// runs nothing and returns false where that cannot be done here: fewer than two problems, a
// dtype other than f32 and bf16, an empty dimension, sizes beyond int, no cuBLAS with the
// function, TRIDENT_CUDA_GROUPED_GEMM=0, or cuBLAS declining the dtype (remembered, with one
// warning). Any other cuBLAS error is thrown.
bool grouped_gemm(const std::vector<GemmProblem>& problems, DType dtype, cudaStream_t stream);

}  // namespace trident::ops::cuda
