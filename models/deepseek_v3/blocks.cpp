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
  Tensor y = Tensor::empty({x.size(0), w.value.size(0)}, DType::F32, x.device());
  ops::linear_forward(x, w.value, y);
  round_activations(w.activations, {&y});
  return y;
}

Tensor linear_step_backward_input(const Weight& w, const Tensor& dy, LinearStep& step) {
  Tensor dx = Tensor::empty({dy.size(0), w.value.size(1)}, DType::F32, dy.device());
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
  step.rstd = Tensor::empty({x.size(0)}, DType::F32, x.device());
  Tensor y = Tensor::empty(x.shape(), DType::F32, x.device());
  ops::rmsnorm_forward(x, w.value, eps, y, step.rstd);
  round_activations(w.activations, {&y});
  return y;
}

Tensor norm_step_backward_input(const Weight& w, const Tensor& dy, NormStep& step) {
  Tensor dx = Tensor::empty(dy.shape(), DType::F32, dy.device());
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
  TRIDENT_CHECK(width > 0 && x.numel() % width == 0, "take_columns: ", x.describe(),
                " is not made of rows of ", width);
  Tensor out = Tensor::empty({x.numel() / width, count}, DType::F32, x.device());
  if (out.numel() > 0) ops::copy_columns(x, width, begin, out, count, 0, count);
  return out;
}

void put_columns(Tensor& dst, int64_t width, int64_t begin, const Tensor& src, bool accumulate) {
  TRIDENT_CHECK(width > 0 && dst.numel() % width == 0, "put_columns: ", dst.describe(),
                " is not made of rows of ", width);
  const int64_t rows = dst.numel() / width;
  if (rows == 0 || src.numel() == 0) return;
  TRIDENT_CHECK(src.numel() % rows == 0, "put_columns: ", src.describe(),
                " does not fill columns of the ", rows, " rows of ", dst.describe());
  const int64_t count = src.numel() / rows;
  ops::copy_columns(src, count, 0, dst, width, begin, count, accumulate);
}

Tensor add(const Tensor& a, const Tensor& b) {
  TRIDENT_CHECK(a.numel() == b.numel(), "add: ", a.describe(), " vs ", b.describe());
  Tensor out = a.clone();
  ops::axpy(1.0f, b, out);
  return out;
}

}  // namespace trident::models
