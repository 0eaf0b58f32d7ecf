#pragma once
// The small pieces every block is written with: a weight (value + gradient views into the
// ParameterStore), a linear or RMSNorm application that remembers what its backward needs,
// and column copies for the [a | b] splits of MLA.
//
// Backward is split the way zero-bubble pipeline schedules need it: backward_input produces the
// input gradient and keeps the output gradient; backward_weight later turns (saved input, kept
// output gradient) into the weight gradient (accumulated, so micro-batches add up) and frees both.
#include <cstdint>
#include <initializer_list>
#include <string>

#include "models/deepseek_v3/parameters.h"
#include "runtime/core/tensor.h"

namespace trident::models {

struct Weight {
  Tensor value;  // the compute weight (the parameter's bf16 copy under bf16 weights)
  Tensor grad;   // undefined for a frozen weight: backward_weight then does nothing
  // The dtype of what the linear or norm produces, forward and backward (the store's
  // activations; fp32 for the router and lm_head, whose logits feed fp32 scores and loss).
  DType activations = DType::F32;
};
Weight weight_of(ParameterStore& store, const std::string& name);
// The same weight with fp32 outputs.
Weight with_fp32_outputs(Weight weight);

// Under bf16 activations, x's values become the nearest bf16 values: what a bf16 activation
// tensor holds. Nothing under fp32. Each of `xs` may be undefined.
void round_activations(DType activations, std::initializer_list<Tensor*> xs);

// y = x · Wᵀ
struct LinearStep {
  Tensor x;   // saved input
  Tensor dy;  // output gradient kept for backward_weight
};
Tensor linear_step_forward(const Weight& w, const Tensor& x, LinearStep& step);
// dx (=|+=) dy · W. When dx is undefined a new tensor is returned.
Tensor linear_step_backward_input(const Weight& w, const Tensor& dy, LinearStep& step);
void linear_step_backward_input_into(const Weight& w, const Tensor& dy, LinearStep& step,
                                     Tensor& dx, bool accumulate);
void linear_step_backward_weight(const Weight& w, LinearStep& step);

// y = rms(x) · w
struct NormStep {
  Tensor x;
  Tensor rstd;
  Tensor dy;
};
Tensor norm_step_forward(const Weight& w, float eps, const Tensor& x, NormStep& step);
Tensor norm_step_backward_input(const Weight& w, const Tensor& dy, NormStep& step);
void norm_step_backward_input_into(const Weight& w, const Tensor& dy, NormStep& step, Tensor& dx,
                                   bool accumulate);
void norm_step_backward_weight(const Weight& w, NormStep& step);

// x viewed as [rows, width]: a new [rows, count] tensor of columns [begin, begin + count).
Tensor take_columns(const Tensor& x, int64_t width, int64_t begin, int64_t count);
// dst viewed as [rows, width]: columns [begin, begin + src width) (=|+=) src.
void put_columns(Tensor& dst, int64_t width, int64_t begin, const Tensor& src, bool accumulate);
// out = a + b (new tensor).
Tensor add(const Tensor& a, const Tensor& b);

}  // namespace trident::models
