// SwiGLU gate: out = silu(gate) · up.
#include <cmath>

#include "ops/cpu/detail.h"
#include "ops/cpu/elementwise.h"
#include "runtime/core/profiler.h"

namespace trident::ops::cpu {
namespace {

float sigmoid(float v) { return 1.0f / (1.0f + std::exp(-v)); }

}  // namespace

void swiglu_forward(const Tensor& gate, const Tensor& up, Tensor& out) {
  TRIDENT_PROFILE_SCOPE("swiglu_forward");
  const int64_t n = detail::check_f32_elementwise(
      gate, {{gate, "swiglu gate"}, {up, "swiglu up"}, {out, "swiglu out"}});
  const float* g = gate.data<float>();
  const float* u = up.data<float>();
  float* y = out.data<float>();
#pragma omp parallel for schedule(static) if (detail::worth_parallel(n))
  for (int64_t i = 0; i < n; ++i) y[i] = g[i] * sigmoid(g[i]) * u[i];
}

// d silu(g)/dg = σ(g) · (1 + g · (1 − σ(g))).
void swiglu_backward(const Tensor& dout, const Tensor& gate, const Tensor& up, Tensor& dgate,
                     Tensor& dup) {
  TRIDENT_PROFILE_SCOPE("swiglu_backward");
  const int64_t n = detail::check_f32_elementwise(gate, {{dout, "swiglu dout"},
                                                         {gate, "swiglu gate"},
                                                         {up, "swiglu up"},
                                                         {dgate, "swiglu dgate"},
                                                         {dup, "swiglu dup"}});
  const float* dy = dout.data<float>();
  const float* g = gate.data<float>();
  const float* u = up.data<float>();
  float* dg = dgate.data<float>();
  float* du = dup.data<float>();
#pragma omp parallel for schedule(static) if (detail::worth_parallel(n))
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
