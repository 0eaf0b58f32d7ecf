#pragma once
// CUDA, cuBLASLt, cuDNN and NCCL variants of the error family. Included only by code that is
// compiled when the CUDA toolkit is present (TRIDENT_WITH_CUDA).
#include "runtime/core/error.h"

#define TRIDENT_CHECK_CUDA(expr)                                                            \
  do {                                                                                      \
    cudaError_t trident_cuda_rc_ = (expr);                                                  \
    if (trident_cuda_rc_ != cudaSuccess)                                                    \
      TRIDENT_FAIL_KIND(::trident::ErrorKind::Cuda, #expr " failed: ",                      \
                        cudaGetErrorString(trident_cuda_rc_));                              \
  } while (0)

#define TRIDENT_CHECK_CUBLAS(expr)                                                          \
  do {                                                                                      \
    cublasStatus_t trident_cublas_rc_ = (expr);                                             \
    if (trident_cublas_rc_ != CUBLAS_STATUS_SUCCESS)                                        \
      TRIDENT_FAIL_KIND(::trident::ErrorKind::Cuda, #expr " failed: cuBLAS status ",       \
                        static_cast<int>(trident_cublas_rc_));                              \
  } while (0)

#define TRIDENT_CHECK_CUDNN(expr)                                                           \
  do {                                                                                      \
    cudnnStatus_t trident_cudnn_rc_ = (expr);                                               \
    if (trident_cudnn_rc_ != CUDNN_STATUS_SUCCESS)                                          \
      TRIDENT_FAIL_KIND(::trident::ErrorKind::Cudnn, #expr " failed: ",                     \
                        cudnnGetErrorString(trident_cudnn_rc_));                            \
  } while (0)

#define TRIDENT_CHECK_NCCL(expr)                                                            \
  do {                                                                                      \
    ncclResult_t trident_nccl_rc_ = (expr);                                                 \
    if (trident_nccl_rc_ != ncclSuccess)                                                    \
      TRIDENT_FAIL_KIND(::trident::ErrorKind::Nccl, #expr " failed: ",                      \
                        ncclGetErrorString(trident_nccl_rc_));                              \
  } while (0)
