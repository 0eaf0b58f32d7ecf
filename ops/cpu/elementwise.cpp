// Vector updates used by the optimiser and gradient plumbing.
#include "ops/cpu/elementwise.h"

#include <cstdint>
#include <cstring>

#include "ops/cpu/detail.h"
#include "ops/types.h"
#include "runtime/core/profiler.h"

namespace trident::ops::cpu {
namespace {

// float_to_bf16 (runtime/core/dtype.h) on the fp32 bit pattern, as a select instead of a branch
// so that the loops below vectorize: the same bits, NaN kept a quiet NaN, nearest, ties to even.
inline uint32_t bf16_bits(uint32_t word) {
  const uint32_t nearest = (word + 0x7fffu + ((word >> 16) & 1u)) >> 16;
  const uint32_t quiet_nan = (word >> 16) | 0x0040u;
  return (word & 0x7fffffffu) > 0x7f800000u ? quiet_nan : nearest;
}

}  // namespace

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

void convert(const Tensor& src, Tensor& dst) {
  TRIDENT_PROFILE_SCOPE("convert");
  detail::check_host(src, "convert src");
  detail::check_host(dst, "convert dst");
  TRIDENT_CHECK(src.numel() == dst.numel(), "convert: src ", src.describe(), " and dst ",
                dst.describe(), " must hold as many elements");
  const bool supported = src.dtype() == dst.dtype() ||
                         (src.dtype() == DType::F32 && dst.dtype() == DType::BF16) ||
                         (src.dtype() == DType::BF16 && dst.dtype() == DType::F32);
  TRIDENT_CHECK(supported, "convert: ", src.describe(), " -> ", dst.describe(),
                " (f32 <-> bf16 or one dtype)");
  const int64_t n = src.numel();
  if (src.dtype() == dst.dtype()) {
    if (n > 0) std::memcpy(dst.raw_data(), src.raw_data(), src.nbytes());
  } else if (dst.dtype() == DType::BF16) {
    const float* in = src.data<float>();
    uint16_t* out = &dst.data<bf16>()->bits;  // bf16 is its bits: an array of them
#pragma omp parallel for simd schedule(static) if (parallel : detail::worth_parallel(n))
    for (int64_t i = 0; i < n; ++i) {
      uint32_t word;
      std::memcpy(&word, &in[i], sizeof(word));
      out[i] = static_cast<uint16_t>(bf16_bits(word));
    }
  } else {
    const uint16_t* in = &src.data<bf16>()->bits;
    float* out = dst.data<float>();
#pragma omp parallel for simd schedule(static) if (parallel : detail::worth_parallel(n))
    for (int64_t i = 0; i < n; ++i) {
      const uint32_t word = static_cast<uint32_t>(in[i]) << 16;
      std::memcpy(&out[i], &word, sizeof(word));
    }
  }
}

void round_to_bf16(Tensor& x) {
  TRIDENT_PROFILE_SCOPE("round_to_bf16");
  const int64_t n = detail::check_f32_elementwise(x, {{x, "round_to_bf16 x"}});
  float* p = x.data<float>();
#pragma omp parallel for simd schedule(static) if (parallel : detail::worth_parallel(n))
  for (int64_t i = 0; i < n; ++i) {
    uint32_t word;
    std::memcpy(&word, &p[i], sizeof(word));
    word = bf16_bits(word) << 16;
    std::memcpy(&p[i], &word, sizeof(word));
  }
}

}  // namespace trident::ops::cpu
