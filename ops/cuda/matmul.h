#pragma once
// One row-major matrix product on raw device pointers, as the CUDA linear ops describe it to
// cuBLASLt (linear.cu) and to cuBLAS's grouped GEMM (grouped_gemm.h).
#include <cstdint>

#include "runtime/core/dtype.h"

namespace trident::ops::cuda {

// C[m, n] = alpha · op(A)[m, k] · op(B)[k, n] + beta · C.
struct Matmul {
  bool trans_a = false;
  bool trans_b = false;
  int64_t m = 0;
  int64_t n = 0;
  int64_t k = 0;
  float alpha = 1.0f;
  float beta = 0.0f;
  const void* a = nullptr;
  DType a_type = DType::F32;
  const void* b = nullptr;
  DType b_type = DType::F32;
  void* c = nullptr;
  DType c_type = DType::F32;
};

}  // namespace trident::ops::cuda
