#pragma once
// cuBLAS's functions that cuBLASLt lacks, opened on first use like cuBLASLt (blas_lt_api.h):
// the grouped GEMM that runs every routed expert's product in one launch
// (cublasGemmGroupedBatchedEx, cuBLAS 12.5 and later). The types come from <cublas_api.h>.
#include <cublas_api.h>

#include <string>

namespace trident::ops::cuda {

#define TRIDENT_BLAS_FUNCTIONS(X) \
  X(Create_v2)                    \
  X(Destroy_v2)                   \
  X(SetStream_v2)                 \
  X(GemmGroupedBatchedEx)

// BlasApi::GemmGroupedBatchedEx has the type of cublasGemmGroupedBatchedEx, and so on.
struct BlasApi {
#define TRIDENT_BLAS_MEMBER(name) decltype(&cublas##name) name = nullptr;
  TRIDENT_BLAS_FUNCTIONS(TRIDENT_BLAS_MEMBER)
#undef TRIDENT_BLAS_MEMBER
};

// The library's file name for the toolkit this was built with, e.g. libcublas.so.13.
std::string blas_library_name();

// The functions, loaded on the first call (thread-safe); null when the library or one of its
// functions is missing, `reason` then saying which.
const BlasApi* try_blas(std::string* reason = nullptr);

}  // namespace trident::ops::cuda
