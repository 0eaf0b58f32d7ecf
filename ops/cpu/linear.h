#pragma once
// The CPU backend's dense and grouped linear algebra (OpenBLAS sgemm). Contracts: ops/ops.h.
#include "runtime/core/tensor.h"

namespace trident::ops::cpu {

void gemm(bool trans_a, bool trans_b, float alpha, const Tensor& a, const Tensor& b, float beta,
          Tensor& c);

void linear_forward(const Tensor& x, const Tensor& w, Tensor& y);
void linear_backward_input(const Tensor& dy, const Tensor& w, Tensor& dx, bool accumulate = false);
void linear_backward_weight(const Tensor& dy, const Tensor& x, Tensor& dw);

void grouped_linear_forward(const Tensor& x, const Tensor& w, const std::vector<int64_t>& counts,
                            Tensor& y);
void grouped_linear_backward_input(const Tensor& dy, const Tensor& w,
                                   const std::vector<int64_t>& counts, Tensor& dx,
                                   bool accumulate = false);
void grouped_linear_backward_weight(const Tensor& dy, const Tensor& x,
                                    const std::vector<int64_t>& counts, Tensor& dw);

}  // namespace trident::ops::cpu
