#pragma once
// exp and sigmoid in plain fp32 arithmetic, so that loops over them vectorise (libm's expf is a
// call per element, which stops the compiler); sums whose order does not depend on the vector
// width; and the marker that builds a kernel once more for AVX2. Used by the element-wise and
// softmax kernels of the CPU backend (not public API).
#include <algorithm>
#include <bit>
#include <cstdint>
#include <limits>

// The helpers below are inlined into every kernel that calls them, so that they are built for
// the kernel's instruction set (TRIDENT_AVX2_CLONE); called out of line they would run the
// baseline build.
#if defined(__GNUC__)
#define TRIDENT_ALWAYS_INLINE inline __attribute__((always_inline))
#else
#define TRIDENT_ALWAYS_INLINE inline
#endif

namespace trident::ops::cpu::detail {

// e^x within 1.5 ulp of the correctly rounded value (1.31 ulp measured over [-103, 88.7]):
// Cody-Waite reduction x = n·ln2 + r with |r| ≤ ln2/2, then Cephes' degree-6 polynomial for e^r,
// scaled by 2^n in two halves so that results in the subnormal range and overflow to +inf come
// out right. e^x is +inf above 88.73, 0 below -103.98 (and for -inf), NaN for NaN. The clamps
// are compares that are false for NaN, so a NaN input stays NaN, and the integer part is read
// from the rounding constant's mantissa bits, so no float-to-int conversion sees a NaN.
TRIDENT_ALWAYS_INLINE float exp_f32(float x) {
  constexpr float kLog2e = 1.44269504088896341f;
  constexpr float kLn2High = 0.693359375f;  // few mantissa bits: n · kLn2High is exact
  constexpr float kLn2Low = -2.12194440e-4f;
  constexpr float kRound = 12582912.0f;  // 1.5 · 2^23: adding it rounds to an integer
  x = x < -104.0f ? -104.0f : x;
  x = x > 89.0f ? 89.0f : x;
  const float shifted = x * kLog2e + kRound;
  const int32_t n = std::bit_cast<int32_t>(shifted) - std::bit_cast<int32_t>(kRound);
  const float n_float = shifted - kRound;
  const float r = (x - n_float * kLn2High) - n_float * kLn2Low;
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  const float e_r = p * r * r + r + 1.0f;
  const int32_t half = n >> 1;
  return e_r * std::bit_cast<float>((half + 127) << 23) *
         std::bit_cast<float>((n - half + 127) << 23);
}

TRIDENT_ALWAYS_INLINE float sigmoid_f32(float x) { return 1.0f / (1.0f + exp_f32(-x)); }

// Σ term(i) for i in [0, n), term giving doubles, as eight interleaved partial sums added in
// order at the end: the order of the additions depends on n alone, so a kernel's AVX2 and
// baseline builds give the same sum.
template <typename Term>
TRIDENT_ALWAYS_INLINE double lane_sum(int64_t n, const Term& term) {
  constexpr int kLanes = 8;
  double lanes[kLanes] = {};
  int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes) {
    for (int l = 0; l < kLanes; ++l) lanes[l] += term(i + l);
  }
  for (int l = 0; i < n; ++i, ++l) lanes[l] += term(i);
  double sum = 0.0;
  for (const double lane : lanes) sum += lane;
  return sum;
}

TRIDENT_ALWAYS_INLINE double sum_f64(const float* x, int64_t n) {
  return lane_sum(n, [x](int64_t i) { return static_cast<double>(x[i]); });
}

TRIDENT_ALWAYS_INLINE double dot_f64(const float* x, const float* y, int64_t n) {
  return lane_sum(n, [x, y](int64_t i) { return static_cast<double>(x[i]) * y[i]; });
}

// The largest x_i (-inf for n = 0), NaNs passed over. A maximum is the same in any order, so
// it is taken as eight interleaved maxima (one vector; GCC left the reduction written as one
// running maximum scalar).
TRIDENT_ALWAYS_INLINE float max_f32(const float* x, int64_t n) {
  constexpr int kLanes = 8;
  constexpr float kLowest = -std::numeric_limits<float>::infinity();
  float lanes[kLanes] = {kLowest, kLowest, kLowest, kLowest, kLowest, kLowest, kLowest, kLowest};
  int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes) {
    for (int l = 0; l < kLanes; ++l) lanes[l] = lanes[l] < x[i + l] ? x[i + l] : lanes[l];
  }
  float best = kLowest;
  for (; i < n; ++i) best = best < x[i] ? x[i] : best;
  for (const float lane : lanes) best = best < lane ? lane : best;
  return best;
}

// y_i = e^(x_i − shift) (y may be x); returns Σ y_i in double (sum_f64's order).
TRIDENT_ALWAYS_INLINE double exp_shifted(const float* x, float shift, float* y, int64_t n) {
#pragma omp simd
  for (int64_t i = 0; i < n; ++i) y[i] = exp_f32(x[i] - shift);
  return sum_f64(y, n);
}

// Σ e^(x_i − shift) in double, x left as it is: blocks through a buffer on the stack.
TRIDENT_ALWAYS_INLINE double sum_exp_shifted(const float* x, float shift, int64_t n) {
  constexpr int64_t kBlock = 512;
  float block[kBlock];
  double sum = 0.0;
  for (int64_t begin = 0; begin < n; begin += kBlock) {
    sum += exp_shifted(x + begin, shift, block, std::min(kBlock, n - begin));
  }
  return sum;
}

}  // namespace trident::ops::cpu::detail

// Marks a kernel (a plain function over a range, without OpenMP regions inside: those would be
// outlined and built once, for the baseline) to be built twice, for x86-64-v3 (AVX2; FMA is not
// used, ops/CMakeLists.txt turns contraction off) and for the baseline, the loader picking one
// for the CPU it runs on. GCC on x86-64 only; elsewhere (clang's sanitizer builds, other
// architectures) the baseline build alone, which computes the same values.
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__)
#define TRIDENT_AVX2_CLONE __attribute__((target_clones("arch=x86-64-v3", "default")))
#else
#define TRIDENT_AVX2_CLONE
#endif
