// Vector updates used by the optimiser and gradient plumbing.
#include "ops/cpu/elementwise.h"

#include "ops/cpu/detail.h"

namespace trident::ops::cpu {

void axpy(float alpha, const Tensor& x, Tensor& y) {
  detail::check_f32(x, "axpy x");
  detail::check_f32(y, "axpy y");
  const int64_t n = x.numel();
  detail::check_numel(y, n, "axpy y");
  const float* src = x.data<float>();
  float* dst = y.data<float>();
#pragma omp parallel for schedule(static) if (n > 32768)
  for (int64_t i = 0; i < n; ++i) dst[i] += alpha * src[i];
}

void scale(const Tensor& x, float factor, Tensor& y) {
  detail::check_f32(x, "scale x");
  detail::check_f32(y, "scale y");
  const int64_t n = x.numel();
  detail::check_numel(y, n, "scale y");
  const float* src = x.data<float>();
  float* dst = y.data<float>();
#pragma omp parallel for schedule(static) if (n > 32768)
  for (int64_t i = 0; i < n; ++i) dst[i] = src[i] * factor;
}

}  // namespace trident::ops::cpu
