#pragma once
// Dense linear algebra on the CPU (OpenBLAS sgemm). Weights are stored [out_features,
// in_features] as in Hugging Face checkpoints, so y = x · Wᵀ.
// Conventions shared by every op in ops/cpu:
//   * inputs are contiguous fp32 tensors (weights may be bf16: converted to fp32 on the fly,
//     fp32 accumulation);
//   * outputs are preallocated by the caller with the documented shape;
//   * backward_input writes (overwrites) its result unless `accumulate` is true;
//   * backward_weight always accumulates (+=) into the gradient, so micro-batches add up.
#include "runtime/core/tensor.h"

namespace trident::ops::cpu {

// C[M,N] = alpha · op(A) · op(B) + beta · C, fp32, row-major. op(X) = Xᵀ when trans_X.
void gemm(bool trans_a, bool trans_b, float alpha, const Tensor& a, const Tensor& b, float beta,
          Tensor& c);

// y[T, N] = x[T, K] · w[N, K]ᵀ
void linear_forward(const Tensor& x, const Tensor& w, Tensor& y);
// dx[T, K] (=|+=) dy[T, N] · w[N, K]
void linear_backward_input(const Tensor& dy, const Tensor& w, Tensor& dx, bool accumulate = false);
// dw[N, K] += dy[T, N]ᵀ · x[T, K]
void linear_backward_weight(const Tensor& dy, const Tensor& x, Tensor& dw);

// Grouped GEMM over experts: rows of x are grouped by expert (group g has counts[g] rows,
// consecutive). y_g = x_g · w[g]ᵀ with w [G, N, K]. Empty groups are allowed.
void grouped_linear_forward(const Tensor& x, const Tensor& w, const std::vector<int64_t>& counts,
                            Tensor& y);
void grouped_linear_backward_input(const Tensor& dy, const Tensor& w,
                                   const std::vector<int64_t>& counts, Tensor& dx,
                                   bool accumulate = false);
void grouped_linear_backward_weight(const Tensor& dy, const Tensor& x,
                                    const std::vector<int64_t>& counts, Tensor& dw);

}  // namespace trident::ops::cpu
