// The register-tiled product (ops/cpu/tiled_gemm.h): right in every transpose combination and
// every kind of tail (rows past the last strip, columns past the last vector of sixteen or eight),
// with leading dimensions wider than the matrices; the same bits in every build the CPU runs and
// however C is cut into blocks of rows; and sgemm's use of it at one thread and at three.
#include <gtest/gtest.h>
#include <omp.h>

#include <cmath>
#include <cstring>
#include <random>
#include <tuple>
#include <vector>

#include "ops/cpu/detail.h"
#include "ops/cpu/tiled_gemm.h"

namespace trident::ops::testing {
namespace {

using namespace trident::ops::cpu::detail;

struct Product {
  int64_t m, n, k;
  bool trans_a, trans_b;
  int64_t lda, ldb, ldc;  // each 3 wider than the matrix needs
  std::vector<float> a, b, c;
};

Product make_product(int64_t m, int64_t n, int64_t k, bool trans_a, bool trans_b,
                     std::mt19937& rng) {
  Product p{m,     n,  k,  trans_a, trans_b, (trans_a ? m : k) + 3, (trans_b ? k : n) + 3,
            n + 3, {}, {}, {}};
  std::uniform_real_distribution<float> value(-1.0f, 1.0f);
  p.a.resize(static_cast<size_t>((trans_a ? k : m) * p.lda));
  p.b.resize(static_cast<size_t>((trans_b ? n : k) * p.ldb));
  p.c.resize(static_cast<size_t>(m * p.ldc));
  for (float& x : p.a) x = value(rng);
  for (float& x : p.b) x = value(rng);
  for (float& x : p.c) x = value(rng);
  return p;
}

float a_at(const Product& p, int64_t i, int64_t q) {
  return p.trans_a ? p.a[q * p.lda + i] : p.a[i * p.lda + q];
}
float b_at(const Product& p, int64_t q, int64_t j) {
  return p.trans_b ? p.b[j * p.ldb + q] : p.b[q * p.ldb + j];
}

// C after the kernel, rows [row_begin, row_end) computed by one call.
void run_rows(const Product& p, float alpha, bool accumulate, TiledGemmIsa isa, int64_t row_begin,
              int64_t row_end, std::vector<float>& c) {
  const float* a = p.a.data() + (p.trans_a ? row_begin : row_begin * p.lda);
  tiled_gemm(p.trans_a, p.trans_b, row_end - row_begin, p.n, p.k, alpha, a, p.lda, p.b.data(),
             p.ldb, accumulate, c.data() + row_begin * p.ldc, p.ldc, isa);
}

std::vector<float> run(const Product& p, float alpha, bool accumulate, TiledGemmIsa isa) {
  std::vector<float> c = p.c;
  run_rows(p, alpha, accumulate, isa, 0, p.m, c);
  return c;
}

std::vector<TiledGemmIsa> runnable_isas() {
  std::vector<TiledGemmIsa> isas;
  for (TiledGemmIsa isa : {TiledGemmIsa::kBaseline, TiledGemmIsa::kAvx2, TiledGemmIsa::kAvx512}) {
    if (tiled_gemm_runs(isa)) isas.push_back(isa);
  }
  return isas;
}

// Rows: whole strips of 8 and 4 and a remainder; columns: whole tiles of 32, one vector of 16,
// one of 8 and single ones (45 = 32 + 8 + 5, 61 = 32 + 16 + 8 + 5), and a single column.
// Depth: one step, under one block of 128, and 129 and 300 (walked as 128 + 1 and 128 + 128 + 44).
const std::tuple<int64_t, int64_t, int64_t> kShapes[] = {
    {37, 45, 13}, {64, 61, 96}, {11, 16, 1}, {9, 1, 7}, {35, 96, 40}, {21, 45, 300}, {13, 61, 129}};

// Calls check(p) for a product of every shape of kShapes in every transpose combination, random
// operands from `seed`, with the product's shape and transposes in the failure messages.
template <typename Check>
void for_each_product(unsigned seed, const Check& check) {
  std::mt19937 rng(seed);
  for (const auto& [m, n, k] : kShapes) {
    for (bool trans_a : {false, true}) {
      for (bool trans_b : {false, true}) {
        SCOPED_TRACE(::testing::Message() << "m " << m << " n " << n << " k " << k << " trans "
                                        << trans_a << trans_b);
        check(make_product(m, n, k, trans_a, trans_b, rng));
      }
    }
  }
}

TEST(TiledGemm, MatchesFp64InEveryTransposeAndTail) {
  for_each_product(31, [](const Product& p) {
    for (bool accumulate : {false, true}) {
      const std::vector<float> c = run(p, 0.5f, accumulate, tiled_gemm_best_isa());
      for (int64_t i = 0; i < p.m; ++i) {
        for (int64_t j = 0; j < p.ldc; ++j) {
          const float got = c[i * p.ldc + j];
          if (j >= p.n) {  // past C's columns: untouched
            EXPECT_EQ(got, p.c[i * p.ldc + j]);
            continue;
          }
          double sum = 0.0;
          for (int64_t q = 0; q < p.k; ++q) sum += double{a_at(p, i, q)} * b_at(p, q, j);
          const double want = 0.5 * sum + (accumulate ? p.c[i * p.ldc + j] : 0.0);
          EXPECT_NEAR(got, want, 1e-5 * (1.0 + static_cast<double>(p.k)))
              << "accumulate " << accumulate << " at (" << i << ", " << j << ")";
        }
      }
    }
  });
}

// The contract itself: each element is the fp32 sum over p in ascending order of separately
// rounded products (this file is built without FMA contraction), then scaled and added, also
// where the depth is walked in blocks.
TEST(TiledGemm, EachElementIsTheAscendingFp32Sum) {
  for_each_product(34, [](const Product& p) {
    const std::vector<float> c = run(p, 0.75f, true, tiled_gemm_best_isa());
    for (int64_t i = 0; i < p.m; ++i) {
      for (int64_t j = 0; j < p.n; ++j) {
        float sum = 0.0f;
        for (int64_t q = 0; q < p.k; ++q) sum += a_at(p, i, q) * b_at(p, q, j);
        const float want = p.c[i * p.ldc + j] + 0.75f * sum;
        ASSERT_EQ(c[i * p.ldc + j], want) << "at (" << i << ", " << j << ")";
      }
    }
  });
}

TEST(TiledGemm, EveryBuildAndEveryCutOfTheRowsGiveTheSameBits) {
  const std::vector<TiledGemmIsa> isas = runnable_isas();
  for_each_product(32, [&](const Product& p) {
    const std::vector<float> baseline = run(p, 1.25f, true, TiledGemmIsa::kBaseline);
    for (TiledGemmIsa isa : isas) {
      EXPECT_EQ(run(p, 1.25f, true, isa), baseline) << "build " << static_cast<int>(isa);
      // Cut at a row that is no multiple of a strip.
      std::vector<float> cut = p.c;
      run_rows(p, 1.25f, true, isa, 0, p.m / 3, cut);
      run_rows(p, 1.25f, true, isa, p.m / 3, p.m, cut);
      EXPECT_EQ(cut, baseline) << "build " << static_cast<int>(isa) << ", cut at " << p.m / 3;
    }
  });
}

TEST(TiledGemm, SgemmGivesTheSameBitsAtOneAndThreeThreads) {
  // Big enough for sgemm to spread it over threads, small enough for the kernel.
  const int64_t m = 1301, n = 40, k = 97;
  ASSERT_TRUE(tiled_gemm_suits(true, m, n, k));
  std::mt19937 rng(33);
  const int previous = omp_get_max_threads();
  for (bool trans_a : {false, true}) {
    for (bool trans_b : {false, true}) {
      const Product p = make_product(m, n, k, trans_a, trans_b, rng);
      std::vector<float> results[2];
      for (int t = 0; t < 2; ++t) {
        omp_set_num_threads(t == 0 ? 1 : 3);
        results[t] = p.c;
        sgemm(trans_a, trans_b, m, n, k, 1.0f, p.a.data(), p.lda, p.b.data(), p.ldb, 1.0f,
              results[t].data(), p.ldc);
      }
      EXPECT_EQ(results[0], results[1]) << "trans " << trans_a << trans_b;
      if (tiled_gemm_available()) {  // and it is the kernel that computed it
        EXPECT_EQ(results[0], run(p, 1.0f, true, tiled_gemm_best_isa()));
      }
    }
  }
  omp_set_num_threads(previous);
}

TEST(TiledGemm, ProductsWithALargeBAreLeftToOpenBlas) {
  EXPECT_TRUE(tiled_gemm_suits(true, 1024, 96, 256));       // a forward product
  EXPECT_TRUE(tiled_gemm_suits(true, 1, 96, 256));          // one row: decoding
  EXPECT_TRUE(tiled_gemm_suits(false, 96, 256, 4096));      // a weight's gradient over 4096 tokens
  EXPECT_FALSE(tiled_gemm_suits(true, 1024, 256, 4096));    // a transposed B is copied whole
  EXPECT_FALSE(tiled_gemm_suits(false, 1024, 32768, 128));  // a vocabulary's weight
  EXPECT_FALSE(tiled_gemm_suits(true, 0, 96, 256));
}

}  // namespace
}  // namespace trident::ops::testing
