// Vector updates used by the optimiser and gradient plumbing.
#include "ops/cpu/elementwise.h"

#include "ops/cpu/detail.h"
#include "runtime/core/profiler.h"

namespace trident::ops::cpu {

void axpy(float alpha, const Tensor& x, Tensor& y) {
  TRIDENT_PROFILE_SCOPE("axpy");
  const int64_t n = detail::check_f32_elementwise(x, {{x, "axpy x"}, {y, "axpy y"}});
  const float* src = x.data<float>();
  float* dst = y.data<float>();
#pragma omp parallel for schedule(static) if (detail::worth_parallel(n))
  for (int64_t i = 0; i < n; ++i) dst[i] += alpha * src[i];
}

void scale(const Tensor& x, float factor, Tensor& y) {
  TRIDENT_PROFILE_SCOPE("scale");
  const int64_t n = detail::check_f32_elementwise(x, {{x, "scale x"}, {y, "scale y"}});
  const float* src = x.data<float>();
  float* dst = y.data<float>();
#pragma omp parallel for schedule(static) if (detail::worth_parallel(n))
  for (int64_t i = 0; i < n; ++i) dst[i] = src[i] * factor;
}

void round_to_bf16(Tensor& x) {
  TRIDENT_PROFILE_SCOPE("round_to_bf16");
  const int64_t n = detail::check_f32_elementwise(x, {{x, "round_to_bf16 x"}});
  float* p = x.data<float>();
#pragma omp parallel for schedule(static) if (detail::worth_parallel(n))
  for (int64_t i = 0; i < n; ++i) p[i] = bf16_to_float(float_to_bf16(p[i]));
}

}  // namespace trident::ops::cpu
