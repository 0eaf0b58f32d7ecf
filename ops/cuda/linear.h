#pragma once
// Dense and grouped linear algebra on the GPU with cuBLASLt. Same contracts as ops/ops.h
// (row-major, weights [out, in], y = x · Wᵀ, backward_weight accumulates), on CUDA tensors,
// enqueued on `stream`.
//
// Types: every operand may be f32 or bf16; arithmetic accumulates in fp32 (CUBLAS_COMPUTE_32F,
// no TF32, so f32 results track the CPU oracle closely). When A and B differ in type the bf16
// one is widened to f32 in a temporary first. The output may be f32 or bf16.
#include <cuda_runtime_api.h>

#include <cstdint>
#include <vector>

#include "runtime/core/tensor.h"

namespace trident::ops::cuda {

// C[M,N] = alpha · op(A) · op(B) + beta · C, row-major 2-D tensors. op(X) = Xᵀ when trans_X.
void gemm(bool trans_a, bool trans_b, float alpha, const Tensor& a, const Tensor& b, float beta,
          Tensor& c, cudaStream_t stream = nullptr);

// y[T, N] = x[T, K] · w[N, K]ᵀ (x may have more leading dimensions: T = numel / K).
void linear_forward(const Tensor& x, const Tensor& w, Tensor& y, cudaStream_t stream = nullptr);
// dx[T, K] (=|+=) dy[T, N] · w[N, K]
void linear_backward_input(const Tensor& dy, const Tensor& w, Tensor& dx, bool accumulate = false,
                           cudaStream_t stream = nullptr);
// dw[N, K] += dy[T, N]ᵀ · x[T, K]
void linear_backward_weight(const Tensor& dy, const Tensor& x, Tensor& dw,
                            cudaStream_t stream = nullptr);

// Grouped GEMM over experts: rows of x are grouped by expert (group g has counts[g] rows,
// consecutive), y_g = x_g · w[g]ᵀ with w [G, N, K]. Empty groups are skipped. The counts live on
// the host because they decide the launches (the dispatcher knows them from the all-to-all).
void grouped_linear_forward(const Tensor& x, const Tensor& w, const std::vector<int64_t>& counts,
                            Tensor& y, cudaStream_t stream = nullptr);
void grouped_linear_backward_input(const Tensor& dy, const Tensor& w,
                                   const std::vector<int64_t>& counts, Tensor& dx,
                                   bool accumulate = false, cudaStream_t stream = nullptr);
void grouped_linear_backward_weight(const Tensor& dy, const Tensor& x,
                                    const std::vector<int64_t>& counts, Tensor& dw,
                                    cudaStream_t stream = nullptr);

}  // namespace trident::ops::cuda
