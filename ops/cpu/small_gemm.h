#pragma once
// A matrix product for operands too small for OpenBLAS to pay for its packing: attention heads
// of a few dozen dimensions, where a call to sgemm spends more time copying its operands into
// panels and zeroing C than multiplying them (ops/cpu/attention.cpp). Strips of four rows of C
// are kept in registers, eight columns at a time, while the inner dimension is walked once.
//
// Every element of C is the sum over p in ascending order, whether it falls in a vector of eight
// or in the scalar columns at the end, and no multiply is fused with its add
// (-ffp-contract=off): the result does not depend on the instruction set nor on how C is cut,
// so callers may split C between threads freely. Inlined into the caller, so it runs in the
// caller's instruction set (TRIDENT_AVX2_CLONE).
#include <cstdint>
#include <cstring>

#include "ops/cpu/vector_math.h"

namespace trident::ops::cpu::detail {

// Eight floats: one AVX register in the x86-64-v3 clones, two SSE registers otherwise. Only
// ever a local variable, filled and emptied with memcpy (unaligned loads and stores): passed or
// returned by value it would change the calling convention between the clones.
typedef float Vec8 __attribute__((vector_size(32)));

// A(i, p) = a[i · row_step + p · col_step]: a row-major matrix, or the transpose of one.
struct StridedMatrix {
  const float* a;
  int64_t row_step;
  int64_t col_step;
  float at(int64_t i, int64_t p) const { return a[i * row_step + p * col_step]; }
};

// Rows i0 … i0 + R − 1 of C; see small_gemm.
template <int R>
TRIDENT_ALWAYS_INLINE void small_gemm_strip(int64_t i0, int64_t n, int64_t k, float alpha,
                                            const StridedMatrix& a, const float* b, int64_t ldb,
                                            float* c, int64_t ldc, bool accumulate) {
  int64_t j = 0;
  // Sixteen columns at a time while they last: 2·R independent sums hide the add's latency
  // better than R (the order of each element's sum is the same either way).
  for (; j + 16 <= n; j += 16) {
    Vec8 lo[R] = {}, hi[R] = {};
    for (int64_t p = 0; p < k; ++p) {
      Vec8 b_lo, b_hi;
      std::memcpy(&b_lo, b + p * ldb + j, sizeof(b_lo));
      std::memcpy(&b_hi, b + p * ldb + j + 8, sizeof(b_hi));
      for (int r = 0; r < R; ++r) {
        const float a_value = a.at(i0 + r, p);
        lo[r] += a_value * b_lo;
        hi[r] += a_value * b_hi;
      }
    }
    for (int r = 0; r < R; ++r) {
      float* out = c + (i0 + r) * ldc + j;
      Vec8 result_lo = alpha * lo[r], result_hi = alpha * hi[r];
      if (accumulate) {
        Vec8 before_lo, before_hi;
        std::memcpy(&before_lo, out, sizeof(before_lo));
        std::memcpy(&before_hi, out + 8, sizeof(before_hi));
        result_lo = before_lo + result_lo;
        result_hi = before_hi + result_hi;
      }
      std::memcpy(out, &result_lo, sizeof(result_lo));
      std::memcpy(out + 8, &result_hi, sizeof(result_hi));
    }
  }
  for (; j + 8 <= n; j += 8) {
    Vec8 acc[R] = {};
    for (int64_t p = 0; p < k; ++p) {
      Vec8 bv;
      std::memcpy(&bv, b + p * ldb + j, sizeof(bv));
      for (int r = 0; r < R; ++r) acc[r] += a.at(i0 + r, p) * bv;
    }
    for (int r = 0; r < R; ++r) {
      float* out = c + (i0 + r) * ldc + j;
      Vec8 result = alpha * acc[r];
      if (accumulate) {
        Vec8 before;
        std::memcpy(&before, out, sizeof(before));
        result = before + result;
      }
      std::memcpy(out, &result, sizeof(result));
    }
  }
  for (; j < n; ++j) {
    for (int r = 0; r < R; ++r) {
      float acc = 0.0f;
      for (int64_t p = 0; p < k; ++p) acc += a.at(i0 + r, p) * b[p * ldb + j];
      float& out = c[(i0 + r) * ldc + j];
      out = accumulate ? out + alpha * acc : alpha * acc;
    }
  }
}

// C[m × n] = alpha · A[m × k] · B[k × n] (accumulate: C += …), B and C row-major with leading
// dimensions ldb and ldc.
TRIDENT_ALWAYS_INLINE void small_gemm(int64_t m, int64_t n, int64_t k, float alpha,
                                      const StridedMatrix& a, const float* b, int64_t ldb, float* c,
                                      int64_t ldc, bool accumulate) {
  int64_t i = 0;
  for (; i + 4 <= m; i += 4) small_gemm_strip<4>(i, n, k, alpha, a, b, ldb, c, ldc, accumulate);
  for (; i < m; ++i) small_gemm_strip<1>(i, n, k, alpha, a, b, ldb, c, ldc, accumulate);
}

}  // namespace trident::ops::cpu::detail
