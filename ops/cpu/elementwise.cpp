// Vector updates used by the optimiser and gradient plumbing.
#include "ops/cpu/elementwise.h"

#include "ops/cpu/detail.h"
#include "ops/types.h"
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

void copy_columns(const Tensor& src, int64_t src_width, int64_t src_begin, Tensor& dst,
                  int64_t dst_width, int64_t dst_begin, int64_t count, bool accumulate) {
  TRIDENT_PROFILE_SCOPE("copy_columns");
  detail::check_f32(src, "copy_columns src");
  detail::check_f32(dst, "copy_columns dst");
  const int64_t rows =
      column_copy_rows(src, src_width, src_begin, dst, dst_width, dst_begin, count);
  const float* from = src.data<float>() + src_begin;
  float* to = dst.data<float>() + dst_begin;
#pragma omp parallel for schedule(static) if (detail::worth_parallel(rows * count))
  for (int64_t r = 0; r < rows; ++r) {
    const float* in = from + r * src_width;
    float* out = to + r * dst_width;
    // Rows are often a few dozen floats: a loop, not a call to memmove per row.
    if (accumulate) {
#pragma omp simd
      for (int64_t c = 0; c < count; ++c) out[c] += in[c];
    } else {
#pragma omp simd
      for (int64_t c = 0; c < count; ++c) out[c] = in[c];
    }
  }
}

void round_to_bf16(Tensor& x) {
  TRIDENT_PROFILE_SCOPE("round_to_bf16");
  const int64_t n = detail::check_f32_elementwise(x, {{x, "round_to_bf16 x"}});
  float* p = x.data<float>();
#pragma omp parallel for schedule(static) if (detail::worth_parallel(n))
  for (int64_t i = 0; i < n; ++i) p[i] = bf16_to_float(float_to_bf16(p[i]));
}

}  // namespace trident::ops::cpu
