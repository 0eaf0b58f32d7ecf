// SwiGLU gate: out = silu(gate) · up.
#include "ops/cpu/detail.h"
#include "ops/cpu/elementwise.h"
#include "ops/cpu/vector_math.h"
#include "runtime/core/profiler.h"

namespace trident::ops::cpu {
namespace {

TRIDENT_AVX2_CLONE void swiglu_forward_range(const float* g, const float* u, float* y,
                                             int64_t begin, int64_t end) {
#pragma omp simd
  for (int64_t i = begin; i < end; ++i) y[i] = g[i] * detail::sigmoid_f32(g[i]) * u[i];
}

// d silu(g)/dg = σ(g) · (1 + g · (1 − σ(g))). Every input of an element is read before its
// gradients are written: the gradients may alias the inputs.
TRIDENT_AVX2_CLONE void swiglu_backward_range(const float* dy, const float* g, const float* u,
                                              float* dg, float* du, int64_t begin, int64_t end) {
#pragma omp simd
  for (int64_t i = begin; i < end; ++i) {
    const float gate_value = g[i];
    const float up_value = u[i];
    const float grad = dy[i];
    const float s = detail::sigmoid_f32(gate_value);
    du[i] = grad * gate_value * s;
    dg[i] = grad * up_value * s * (1.0f + gate_value * (1.0f - s));
  }
}

}  // namespace

void swiglu_forward(const Tensor& gate, const Tensor& up, Tensor& out) {
  TRIDENT_PROFILE_SCOPE("swiglu_forward");
  const int64_t n = detail::check_f32_elementwise(
      gate, {{gate, "swiglu gate"}, {up, "swiglu up"}, {out, "swiglu out"}});
  const float* g = gate.data<float>();
  const float* u = up.data<float>();
  float* y = out.data<float>();
  detail::for_ranges(
      n, n, [&](int64_t begin, int64_t end) { swiglu_forward_range(g, u, y, begin, end); });
}

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
  detail::for_ranges(n, n, [&](int64_t begin, int64_t end) {
    swiglu_backward_range(dy, g, u, dg, du, begin, end);
  });
}

}  // namespace trident::ops::cpu
