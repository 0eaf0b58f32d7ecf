// The register-tiled product (tiled_gemm.h): strips of R rows of C, W vectors of columns at a
// time, held in R·W vector registers while the inner dimension is walked.
#include "ops/cpu/tiled_gemm.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <string_view>
#include <vector>

#include "ops/cpu/vector_math.h"
#include "runtime/core/error.h"

namespace trident::ops::cpu::detail {
namespace {

// Sixteen floats: one AVX-512 register, two AVX2 ones. Eight: one AVX2 register. Filled and
// emptied with memcpy (unaligned loads and stores), never passed by value.
typedef float Vec16 __attribute__((vector_size(64)));
typedef float Vec8 __attribute__((vector_size(32)));

struct Operands {
  const float* a;
  int64_t a_row_step;  // A(i, p) = a[i · a_row_step + p · a_col_step]
  int64_t a_col_step;
  const float* b;  // B(p, j) = b[p · ldb + j]
  int64_t ldb;
  float* c;
  int64_t ldc;
  int64_t k;
  float alpha;
  bool accumulate;
  // A product deeper than kDepthBlock is walked one block of the inner dimension at a time, the
  // running sums kept in `partial` (ldp) between blocks: fp32 stored and reloaded unchanged, so
  // every sum is still the one ascending walk. `resume`: start from the sums in `partial`;
  // `finish`: the last block, which writes C.
  float* partial = nullptr;
  int64_t ldp = 0;
  bool resume = false;
  bool finish = true;
};

template <typename Vec>
TRIDENT_ALWAYS_INLINE void store(const Operands& o, float* out, const Vec& sum) {
  Vec result = o.alpha * sum;
  if (o.accumulate) {
    Vec before;
    std::memcpy(&before, out, sizeof(before));
    result = before + result;
  }
  std::memcpy(out, &result, sizeof(result));
}

// Rows i0 … i0 + R − 1 and columns j … j + W·lanes − 1 of C, W vectors of type Vec per row.
template <int R, int W, typename Vec>
TRIDENT_ALWAYS_INLINE void tile(const Operands& o, int64_t i0, int64_t j) {
  constexpr int kLanes = sizeof(Vec) / sizeof(float);
  Vec sum[R][W] = {};
  const float* a_rows[R];
  // Unrolled by hand-placed pragmas: at -O2 GCC keeps these short loops, and the sums then live
  // on the stack instead of in registers.
#pragma GCC unroll 16
  for (int r = 0; r < R; ++r) a_rows[r] = o.a + (i0 + r) * o.a_row_step;
  if (o.resume) {
#pragma GCC unroll 16
    for (int r = 0; r < R; ++r) {
#pragma GCC unroll 16
      for (int w = 0; w < W; ++w) {
        std::memcpy(&sum[r][w], o.partial + (i0 + r) * o.ldp + j + w * kLanes, sizeof(Vec));
      }
    }
  }
  for (int64_t p = 0; p < o.k; ++p) {
    Vec b[W];
#pragma GCC unroll 16
    for (int w = 0; w < W; ++w) std::memcpy(&b[w], o.b + p * o.ldb + j + w * kLanes, sizeof(Vec));
    const int64_t a_offset = p * o.a_col_step;
#pragma GCC unroll 16
    for (int r = 0; r < R; ++r) {
      const float a_value = a_rows[r][a_offset];
#pragma GCC unroll 16
      for (int w = 0; w < W; ++w) sum[r][w] += a_value * b[w];
    }
  }
#pragma GCC unroll 16
  for (int r = 0; r < R; ++r) {
#pragma GCC unroll 16
    for (int w = 0; w < W; ++w) {
      if (o.finish) {
        store(o, o.c + (i0 + r) * o.ldc + j + w * kLanes, sum[r][w]);
      } else {
        std::memcpy(o.partial + (i0 + r) * o.ldp + j + w * kLanes, &sum[r][w], sizeof(Vec));
      }
    }
  }
}

// Columns past the last whole vector of eight, one element at a time, same order of sums.
TRIDENT_ALWAYS_INLINE void scalar_columns(const Operands& o, int64_t i, int64_t j_begin,
                                          int64_t n) {
  for (int64_t j = j_begin; j < n; ++j) {
    float sum = o.resume ? o.partial[i * o.ldp + j] : 0.0f;
    for (int64_t p = 0; p < o.k; ++p) {
      sum += o.a[i * o.a_row_step + p * o.a_col_step] * o.b[p * o.ldb + j];
    }
    if (!o.finish) {
      o.partial[i * o.ldp + j] = sum;
      continue;
    }
    float& out = o.c[i * o.ldc + j];
    out = o.accumulate ? out + o.alpha * sum : o.alpha * sum;
  }
}

// Rows i0 … i0 + R − 1 of C: wide tiles while the columns last, then one vector of sixteen,
// one of eight, and single columns.
template <int R, int W>
TRIDENT_ALWAYS_INLINE void strip(const Operands& o, int64_t i0, int64_t n) {
  int64_t j = 0;
  for (; j + 16 * W <= n; j += 16 * W) tile<R, W, Vec16>(o, i0, j);
  if constexpr (W > 1) {
    for (; j + 16 <= n; j += 16) tile<R, 1, Vec16>(o, i0, j);
  }
  for (; j + 8 <= n; j += 8) tile<R, 1, Vec8>(o, i0, j);
  if (j < n) {
    for (int r = 0; r < R; ++r) scalar_columns(o, i0 + r, j, n);
  }
}

// Every row of C, R at a time, then the last rows one by one.
template <int R, int W>
TRIDENT_ALWAYS_INLINE void all_rows(const Operands& o, int64_t m, int64_t n) {
  int64_t i = 0;
  for (; i + R <= m; i += R) strip<R, W>(o, i, n);
  for (; i < m; ++i) strip<1, W>(o, i, n);
}

#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__)
#define TRIDENT_TILED_GEMM_X86 1
// AVX-512: 32 registers, eight rows by two vectors of sixteen (16 sums) leave room for the
// operands. AVX2: 16 registers, four rows by sixteen columns (8 sums, as two registers each).
__attribute__((target("arch=x86-64-v4"))) void rows_avx512(const Operands& o, int64_t m,
                                                           int64_t n) {
  all_rows<8, 2>(o, m, n);
}
__attribute__((target("arch=x86-64-v3"))) void rows_avx2(const Operands& o, int64_t m, int64_t n) {
  all_rows<4, 1>(o, m, n);
}
#endif

TiledGemmIsa detect_best_isa() {
#ifdef TRIDENT_TILED_GEMM_X86
  __builtin_cpu_init();
  if (__builtin_cpu_supports("x86-64-v4")) return TiledGemmIsa::kAvx512;
  if (__builtin_cpu_supports("x86-64-v3")) return TiledGemmIsa::kAvx2;
#endif
  return TiledGemmIsa::kBaseline;
}

// Set to 0, TRIDENT_CPU_TILED_GEMM asks sgemm for OpenBLAS alone (to compare the two).
bool disabled_by_environment() {
  const char* setting = std::getenv("TRIDENT_CPU_TILED_GEMM");
  return setting != nullptr && std::string_view(setting) == "0";
}

// Floats of op(B) the kernel walks at a time: 256 KiB, a quarter of the L2 of the development
// machine's cores (AMD EPYC, 1 MiB each), the rest for the strips of A, C and the running sums.
// A constant, not the L2 of the CPU it runs on, so that which products the kernel computes, and
// so their bits, does not depend on the machine: every product of the `small` model fits.
constexpr int64_t kMaxPanelFloats = int64_t{64} << 10;

// The inner dimension is walked this many steps at a time (Operands::partial): a block of an
// untransposed B then stays in L2, and a tile's columns of it in L1, however deep the product
// (a weight's gradient sums over every token of the batch).
constexpr int64_t kDepthBlock = 128;

// Every row of C in the build for `isa`.
void run(const Operands& o, int64_t m, int64_t n, TiledGemmIsa isa) {
  switch (isa) {
#ifdef TRIDENT_TILED_GEMM_X86
    case TiledGemmIsa::kAvx512:
      rows_avx512(o, m, n);
      return;
    case TiledGemmIsa::kAvx2:
      rows_avx2(o, m, n);
      return;
#endif
    default:
      all_rows<4, 1>(o, m, n);
      return;
  }
}

// panel[p · n + j] = b[j · ldb + p] for j < n, p < k: eight rows of b at a time, so that every
// write fills a run of eight floats instead of one float per cache line.
void transpose(const float* b, int64_t ldb, int64_t n, int64_t k, float* panel) {
  constexpr int64_t kRows = 8;
  int64_t j0 = 0;
  for (; j0 + kRows <= n; j0 += kRows) {
    for (int64_t p = 0; p < k; ++p) {
      for (int64_t j = j0; j < j0 + kRows; ++j) panel[p * n + j] = b[j * ldb + p];
    }
  }
  for (; j0 < n; ++j0) {
    for (int64_t p = 0; p < k; ++p) panel[p * n + j0] = b[j0 * ldb + p];
  }
}

}  // namespace

bool tiled_gemm_runs(TiledGemmIsa isa) {
  return static_cast<int>(isa) <= static_cast<int>(tiled_gemm_best_isa());
}

TiledGemmIsa tiled_gemm_best_isa() {
  static const TiledGemmIsa best = detect_best_isa();
  return best;
}

bool tiled_gemm_available() {
  static const bool available =
      tiled_gemm_best_isa() != TiledGemmIsa::kBaseline && !disabled_by_environment();
  return available;
}

std::string tiled_gemm_description() {
  if (!tiled_gemm_available()) return "";
  const char* isa = tiled_gemm_best_isa() == TiledGemmIsa::kAvx512 ? "AVX-512" : "AVX2";
  return "products with a B of at most " + std::to_string(kMaxPanelFloats * sizeof(float) >> 10) +
         " KiB per " + std::to_string(kDepthBlock) + " steps of depth in Trident's " + isa +
         " kernel";
}

bool tiled_gemm_suits(bool trans_b, int64_t m, int64_t n, int64_t k) {
  return m > 0 && n * (trans_b ? k : std::min(k, kDepthBlock)) <= kMaxPanelFloats;
}

void tiled_gemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha,
                const float* a, int64_t lda, const float* b, int64_t ldb, bool accumulate, float* c,
                int64_t ldc, TiledGemmIsa isa) {
  TRIDENT_CHECK(tiled_gemm_runs(isa), "tiled_gemm: this CPU does not run the build asked for");
  Operands o{a, trans_a ? 1 : lda, trans_a ? lda : 1, b, ldb, c, ldc, k, alpha, accumulate};
  // A transposed B is copied into a row-major k × n panel of this thread, reused between calls.
  thread_local std::vector<float> panel;
  if (trans_b) {
    panel.resize(static_cast<size_t>(k * n));
    transpose(b, ldb, n, k, panel.data());
    o.b = panel.data();
    o.ldb = n;
  }
  if (k <= kDepthBlock) {
    run(o, m, n, isa);
    return;
  }
  thread_local std::vector<float> partial;
  partial.resize(static_cast<size_t>(m * n));
  for (int64_t p0 = 0; p0 < k; p0 += kDepthBlock) {
    Operands block = o;
    block.k = std::min(kDepthBlock, k - p0);
    block.a = o.a + p0 * o.a_col_step;
    block.b = o.b + p0 * o.ldb;
    block.partial = partial.data();
    block.ldp = n;
    block.resume = p0 > 0;
    block.finish = p0 + block.k == k;
    run(block, m, n, isa);
  }
}

}  // namespace trident::ops::cpu::detail
