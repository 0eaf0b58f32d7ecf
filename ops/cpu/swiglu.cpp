// SwiGLU gate: out = silu(gate) · up.
#include <cmath>

#include "ops/cpu/detail.h"
#include "ops/cpu/elementwise.h"

namespace trident::ops::cpu {
namespace {

float sigmoid(float v) { return 1.0f / (1.0f + std::exp(-v)); }

}  // namespace

void swiglu_forward(const Tensor& gate, const Tensor& up, Tensor& out) {
  detail::check_f32(gate, "swiglu gate");
  detail::check_f32(up, "swiglu up");
  detail::check_f32(out, "swiglu out");
  const int64_t n = gate.numel();
  detail::check_numel(up, n, "swiglu up");
  detail::check_numel(out, n, "swiglu out");
  const float* g = gate.data<float>();
  const float* u = up.data<float>();
  float* y = out.data<float>();
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < n; ++i) y[i] = g[i] * sigmoid(g[i]) * u[i];
}

// d silu(g)/dg = σ(g) · (1 + g · (1 − σ(g))).
void swiglu_backward(const Tensor& dout, const Tensor& gate, const Tensor& up, Tensor& dgate,
                     Tensor& dup) {
  detail::check_f32(dout, "swiglu dout");
  detail::check_f32(gate, "swiglu gate");
  detail::check_f32(up, "swiglu up");
  detail::check_f32(dgate, "swiglu dgate");
  detail::check_f32(dup, "swiglu dup");
  const int64_t n = gate.numel();
  detail::check_numel(dout, n, "swiglu dout");
  detail::check_numel(up, n, "swiglu up");
  detail::check_numel(dgate, n, "swiglu dgate");
  detail::check_numel(dup, n, "swiglu dup");
  const float* dy = dout.data<float>();
  const float* g = gate.data<float>();
  const float* u = up.data<float>();
  float* dg = dgate.data<float>();
  float* du = dup.data<float>();
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < n; ++i) {
    // Read every input before writing: the gradients may alias the inputs.
    const float gate_value = g[i];
    const float up_value = u[i];
    const float grad = dy[i];
    const float s = sigmoid(gate_value);
    du[i] = grad * gate_value * s;
    dg[i] = grad * up_value * s * (1.0f + gate_value * (1.0f - s));
  }
}

}  // namespace trident::ops::cpu
