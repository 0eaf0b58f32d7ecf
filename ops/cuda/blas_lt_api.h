#pragma once
// cuBLASLt's functions, opened on first use instead of linked. The library is over 500 MB; the
// dynamic loader's relocation of it costs every process about 0.45 s and 25,000 page faults at
// start-up whether or not it ever multiplies on a GPU: every `trident` command, every rank of
// a CPU job, every test process. The types still come from <cublasLt.h>.
#include <cublasLt.h>

#include <string>

namespace trident::ops::cuda {

// The functions used, once: a member of BlasLtApi each, and the symbol it is loaded from.
#define TRIDENT_BLAS_LT_FUNCTIONS(X) \
  X(Create)                          \
  X(Destroy)                         \
  X(GetVersion)                      \
  X(Matmul)                          \
  X(MatmulAlgoGetHeuristic)          \
  X(MatmulDescCreate)                \
  X(MatmulDescDestroy)               \
  X(MatmulDescSetAttribute)          \
  X(MatmulPreferenceCreate)          \
  X(MatmulPreferenceDestroy)         \
  X(MatmulPreferenceSetAttribute)    \
  X(MatrixLayoutCreate)              \
  X(MatrixLayoutDestroy)

// BlasLtApi::Matmul has the type of cublasLtMatmul, and so on.
struct BlasLtApi {
#define TRIDENT_BLAS_LT_MEMBER(name) decltype(&cublasLt##name) name = nullptr;
  TRIDENT_BLAS_LT_FUNCTIONS(TRIDENT_BLAS_LT_MEMBER)
#undef TRIDENT_BLAS_LT_MEMBER
};

// The library's file name for the toolkit this was built with, e.g. libcublasLt.so.13.
std::string blas_lt_library_name();

// The functions, loaded on the first call (thread-safe): by file name first, so that
// LD_LIBRARY_PATH and the executable's run path decide, then from the toolkit's directory found
// at configure time. Null when the library or one of its functions is missing; `reason` then
// says which, and what the loader said.
const BlasLtApi* try_blas_lt(std::string* reason = nullptr);

// As try_blas_lt, but a missing library is an error that names it and says where it was sought.
const BlasLtApi& blas_lt();

// Whether this process has the library loaded (a test checks start-up leaves it closed).
bool blas_lt_loaded();

}  // namespace trident::ops::cuda
