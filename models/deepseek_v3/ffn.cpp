#include "models/deepseek_v3/ffn.h"

#include "ops/ops.h"

namespace trident::models {

FfnWeights ffn_weights(ParameterStore& store, const std::string& prefix) {
  return FfnWeights{weight_of(store, prefix + "gate_proj.weight"),
                    weight_of(store, prefix + "up_proj.weight"),
                    weight_of(store, prefix + "down_proj.weight")};
}

Tensor SwiGluFfn::forward(const Tensor& x, FfnContext& ctx) const {
  ctx.g = linear_step_forward(w_.gate, x, ctx.gate);
  ctx.u = linear_step_forward(w_.up, x, ctx.up);
  Tensor a = Tensor::empty(ctx.g.shape(), DType::F32, ctx.g.device());
  ops::swiglu_forward(ctx.g, ctx.u, a);
  round_activations(w_.down.activations, {&a});
  Tensor y = linear_step_forward(w_.down, a, ctx.down);
  parallel::tp::tp_leave_forward(tp_, y);
  return y;
}

Tensor SwiGluFfn::backward_input(const Tensor& dy, FfnContext& ctx) const {
  Tensor dx = Tensor::empty({dy.size(0), w_.gate.value.size(1)}, DType::F32, dy.device());
  backward_input_into(dy, ctx, dx, false);
  return dx;
}

void SwiGluFfn::backward_input_into(const Tensor& dy, FfnContext& ctx, Tensor& dx,
                                    bool accumulate) const {
  const Tensor da = linear_step_backward_input(w_.down, dy, ctx.down);
  Tensor dg = Tensor::empty(ctx.g.shape(), DType::F32, ctx.g.device());
  Tensor du = Tensor::empty(ctx.u.shape(), DType::F32, ctx.u.device());
  ops::swiglu_backward(da, ctx.g, ctx.u, dg, du);
  round_activations(w_.down.activations, {&dg, &du});
  if (tp_.split()) {
    // Each rank's input gradient is a partial sum over its features: reduce it on its own
    // before it joins dx, which may already hold complete gradients from other branches.
    Tensor partial = Tensor::empty({dy.size(0), w_.gate.value.size(1)}, DType::F32, dy.device());
    linear_step_backward_input_into(w_.gate, dg, ctx.gate, partial, false);
    linear_step_backward_input_into(w_.up, du, ctx.up, partial, true);
    parallel::tp::tp_enter_backward(tp_, partial);
    if (accumulate) {
      ops::axpy(1.0f, partial, dx);
    } else {
      dx.copy_from(partial);
    }
  } else {
    linear_step_backward_input_into(w_.gate, dg, ctx.gate, dx, accumulate);
    linear_step_backward_input_into(w_.up, du, ctx.up, dx, true);
  }
  ctx.g = Tensor();
  ctx.u = Tensor();
}

void SwiGluFfn::backward_weight(FfnContext& ctx) const {
  linear_step_backward_weight(w_.down, ctx.down);
  linear_step_backward_weight(w_.gate, ctx.gate);
  linear_step_backward_weight(w_.up, ctx.up);
}

}  // namespace trident::models
