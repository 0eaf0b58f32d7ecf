#include "models/deepseek_v3/blocks.h"

#include "ops/ops.h"
#include "runtime/core/error.h"

namespace trident::models {

Weight weight_of(ParameterStore& store, const std::string& name) {
  Parameter& param = store.get(name);
  return Weight{param.compute, param.grad, store.precision().activations};
}

Weight with_fp32_outputs(Weight weight) {
  weight.activations = DType::F32;
  return weight;
}

void round_activations(DType activations, std::initializer_list<Tensor*> xs) {
  if (activations != DType::BF16) return;
  for (Tensor* x : xs) {
    if (x->defined()) ops::round_to_bf16(*x);
  }
}

Tensor linear_step_forward(const Weight& w, const Tensor& x, LinearStep& step) {
  step.x = x;
  Tensor y = Tensor::empty({x.size(0), w.value.size(0)});
  ops::linear_forward(x, w.value, y);
  round_activations(w.activations, {&y});
  return y;
}

Tensor linear_step_backward_input(const Weight& w, const Tensor& dy, LinearStep& step) {
  Tensor dx = Tensor::empty({dy.size(0), w.value.size(1)});
  linear_step_backward_input_into(w, dy, step, dx, false);
  return dx;
}

void linear_step_backward_input_into(const Weight& w, const Tensor& dy, LinearStep& step,
                                     Tensor& dx, bool accumulate) {
  step.dy = dy;
  ops::linear_backward_input(dy, w.value, dx, accumulate);
  round_activations(w.activations, {&dx});
}

void linear_step_backward_weight(const Weight& w, LinearStep& step) {
  TRIDENT_CHECK(step.dy.defined() && step.x.defined(),
                "backward_weight without forward and backward_input");
  if (w.grad.defined()) {
    Tensor grad = w.grad;  // a handle: writes land in the store
    ops::linear_backward_weight(step.dy, step.x, grad);
  }
  step = LinearStep{};
}

Tensor norm_step_forward(const Weight& w, float eps, const Tensor& x, NormStep& step) {
  step.x = x;
  step.rstd = Tensor::empty({x.size(0)});
  Tensor y = Tensor::empty(x.shape());
  ops::rmsnorm_forward(x, w.value, eps, y, step.rstd);
  round_activations(w.activations, {&y});
  return y;
}

Tensor norm_step_backward_input(const Weight& w, const Tensor& dy, NormStep& step) {
  Tensor dx = Tensor::empty(dy.shape());
  norm_step_backward_input_into(w, dy, step, dx, false);
  return dx;
}

void norm_step_backward_input_into(const Weight& w, const Tensor& dy, NormStep& step, Tensor& dx,
                                   bool accumulate) {
  step.dy = dy;
  ops::rmsnorm_backward_input(dy, step.x, w.value, step.rstd, dx, accumulate);
  round_activations(w.activations, {&dx});
}

void norm_step_backward_weight(const Weight& w, NormStep& step) {
  TRIDENT_CHECK(step.dy.defined() && step.x.defined(),
                "backward_weight without forward and backward_input");
  if (w.grad.defined()) {
    Tensor grad = w.grad;
    ops::rmsnorm_backward_weight(step.dy, step.x, step.rstd, grad);
  }
  step = NormStep{};
}

Tensor take_columns(const Tensor& x, int64_t width, int64_t begin, int64_t count) {
  TRIDENT_CHECK(x.numel() % width == 0 && begin >= 0 && begin + count <= width,
                "take_columns out of range");
  const int64_t rows = x.numel() / width;
  Tensor out = Tensor::empty({rows, count});
  const float* src = x.data<float>();
  float* dst = out.data<float>();
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t c = 0; c < count; ++c) dst[r * count + c] = src[r * width + begin + c];
  }
  return out;
}

void put_columns(Tensor& dst, int64_t width, int64_t begin, const Tensor& src, bool accumulate) {
  TRIDENT_CHECK(dst.numel() % width == 0, "put_columns: bad width");
  const int64_t rows = dst.numel() / width;
  TRIDENT_CHECK(src.numel() % rows == 0, "put_columns: row count mismatch");
  const int64_t count = src.numel() / rows;
  TRIDENT_CHECK(begin >= 0 && begin + count <= width, "put_columns out of range");
  const float* s = src.data<float>();
  float* d = dst.data<float>();
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t c = 0; c < count; ++c) {
      float& target = d[r * width + begin + c];
      target = accumulate ? target + s[r * count + c] : s[r * count + c];
    }
  }
}

Tensor add(const Tensor& a, const Tensor& b) {
  TRIDENT_CHECK(a.numel() == b.numel(), "add: ", a.describe(), " vs ", b.describe());
  Tensor out = a.clone();
  ops::axpy(1.0f, b, out);
  return out;
}

}  // namespace trident::models
