// gemm / linear / grouped linear against naive fp64 products.
#include <gtest/gtest.h>

#include <limits>
#include <random>

#include "gradient_check.h"
#include "ops/cpu/linear.h"

namespace trident::ops::testing {
namespace {

using namespace trident::ops::cpu;

// Element (i, j) of op(X) for a row-major matrix X.
double at(const Tensor& x, bool trans, int64_t i, int64_t j) {
  const int64_t cols = x.size(1);
  return trans ? x.item(j * cols + i) : x.item(i * cols + j);
}

Tensor naive_gemm(bool ta, bool tb, double alpha, const Tensor& a, const Tensor& b, double beta,
                  const Tensor& c) {
  const int64_t m = c.size(0), n = c.size(1), k = ta ? a.size(0) : a.size(1);
  Tensor out = Tensor::empty(c.shape());
  for (int64_t i = 0; i < m; ++i) {
    for (int64_t j = 0; j < n; ++j) {
      double sum = 0.0;
      for (int64_t p = 0; p < k; ++p) sum += at(a, ta, i, p) * at(b, tb, p, j);
      out.data<float>()[i * n + j] = static_cast<float>(alpha * sum + beta * c.item(i * n + j));
    }
  }
  return out;
}

TEST(Gemm, AllTransposeCombinationsMatchNaive) {
  std::mt19937 rng(1);
  const int64_t m = 7, n = 5, k = 13;
  for (bool ta : {false, true}) {
    for (bool tb : {false, true}) {
      const Tensor a = random_tensor(ta ? Shape{k, m} : Shape{m, k}, rng);
      const Tensor b = random_tensor(tb ? Shape{n, k} : Shape{k, n}, rng);
      const Tensor c0 = random_tensor({m, n}, rng);
      Tensor c = c0.clone();
      gemm(ta, tb, 0.5f, a, b, -1.25f, c);
      const Tensor expected = naive_gemm(ta, tb, 0.5, a, b, -1.25, c0);
      EXPECT_LT(relative_error(c, expected), 1e-6) << "trans_a=" << ta << " trans_b=" << tb;
    }
  }
}

TEST(Gemm, BetaZeroIgnoresOldValuesAndEmptyInnerDimensionScalesC) {
  std::mt19937 rng(2);
  const Tensor a = random_tensor({3, 4}, rng);
  const Tensor b = random_tensor({4, 2}, rng);
  Tensor c = Tensor::full({3, 2}, std::numeric_limits<float>::quiet_NaN());
  gemm(false, false, 1.0f, a, b, 0.0f, c);
  EXPECT_LT(relative_error(c, naive_gemm(false, false, 1.0, a, b, 0.0, Tensor::zeros({3, 2}))),
            1e-6);
  Tensor c2 = Tensor::full({3, 2}, 2.0f);
  gemm(false, false, 1.0f, Tensor::empty({3, 0}), Tensor::empty({0, 2}), 0.5f, c2);
  EXPECT_EQ(c2.to_vector(), std::vector<float>(6, 1.0f));
}

TEST(Linear, ForwardAndBackwardMatchNaive) {
  std::mt19937 rng(3);
  const int64_t t = 6, in = 11, out = 5;
  const Tensor x = random_tensor({t, in}, rng);
  const Tensor w = random_tensor({out, in}, rng);
  Tensor y = Tensor::empty({t, out});
  linear_forward(x, w, y);
  EXPECT_LT(relative_error(y, naive_gemm(false, true, 1, x, w, 0, Tensor::zeros({t, out}))), 1e-6);

  const Tensor dy = random_tensor({t, out}, rng);
  const Tensor prior = random_tensor({t, in}, rng);
  Tensor dx = prior.clone();
  linear_backward_input(dy, w, dx, /*accumulate=*/true);
  EXPECT_LT(relative_error(dx, naive_gemm(false, false, 1, dy, w, 1, prior)), 1e-6);
  linear_backward_input(dy, w, dx);  // overwrite
  EXPECT_LT(relative_error(dx, naive_gemm(false, false, 1, dy, w, 0, prior)), 1e-6);

  const Tensor prior_w = random_tensor({out, in}, rng);
  Tensor dw = prior_w.clone();
  linear_backward_weight(dy, x, dw);
  linear_backward_weight(dy, x, dw);  // micro-batches add up
  EXPECT_LT(relative_error(dw, naive_gemm(true, false, 2, dy, x, 1, prior_w)), 1e-6);
}

TEST(Linear, Bf16WeightsAccumulateInFp32) {
  std::mt19937 rng(4);
  const int64_t t = 9, in = 300, out = 7;
  const Tensor x = random_tensor({t, in}, rng);
  const Tensor w = random_tensor({out, in}, rng);
  const Tensor w_bf16 = w.to(DType::BF16);
  const Tensor w_rounded = w_bf16.to(DType::F32);
  Tensor y_bf16 = Tensor::empty({t, out});
  Tensor y_rounded = Tensor::empty({t, out});
  Tensor y_exact = Tensor::empty({t, out});
  linear_forward(x, w_bf16, y_bf16);
  linear_forward(x, w_rounded, y_rounded);
  linear_forward(x, w, y_exact);
  // Same values as fp32 weights that hold the rounded numbers: only the storage differs.
  EXPECT_LT(relative_error(y_bf16, y_rounded), 1e-6);
  // Against unrounded weights the difference is bf16 rounding (2^-9 relative per element).
  const double error = relative_error(y_bf16, y_exact);
  EXPECT_LT(error, 4e-3);
  EXPECT_GT(error, 1e-6);  // the bf16 path really did see rounded weights

  const Tensor dy = random_tensor({t, out}, rng);
  Tensor dx_bf16 = Tensor::empty({t, in});
  Tensor dx_rounded = Tensor::empty({t, in});
  linear_backward_input(dy, w_bf16, dx_bf16);
  linear_backward_input(dy, w_rounded, dx_rounded);
  EXPECT_LT(relative_error(dx_bf16, dx_rounded), 1e-6);
}

TEST(GroupedLinear, EqualsPerGroupLinearWithEmptyGroups) {
  std::mt19937 rng(5);
  const std::vector<int64_t> counts = {3, 0, 1, 0, 4};
  const int64_t groups = 5, in = 6, out = 4, tokens = 8;
  const Tensor x = random_tensor({tokens, in}, rng);
  const Tensor w = random_tensor({groups, out, in}, rng);
  const Tensor dy = random_tensor({tokens, out}, rng);
  for (DType weight_type : {DType::F32, DType::BF16}) {
    const Tensor wt = w.to(weight_type);
    Tensor y = Tensor::empty({tokens, out});
    Tensor dx = Tensor::full({tokens, in}, 7.0f);
    Tensor dw = Tensor::zeros({groups, out, in});
    grouped_linear_forward(x, wt, counts, y);
    grouped_linear_backward_input(dy, wt, counts, dx);
    grouped_linear_backward_weight(dy, x, counts, dw);
    int64_t row = 0;
    for (int64_t g = 0; g < groups; ++g) {
      const int64_t n = counts[static_cast<size_t>(g)];
      const Tensor wg = wt.to(DType::F32).view({groups, out * in}).narrow(g, g + 1).view({out, in});
      if (n > 0) {
        Tensor yg = Tensor::empty({n, out});
        linear_forward(x.narrow(row, row + n), wg, yg);
        EXPECT_LT(relative_error(y.narrow(row, row + n), yg), 1e-6) << "group " << g;
        Tensor dxg = Tensor::empty({n, in});
        linear_backward_input(dy.narrow(row, row + n), wg, dxg);
        EXPECT_LT(relative_error(dx.narrow(row, row + n), dxg), 1e-6) << "group " << g;
      }
      Tensor dwg = Tensor::zeros({out, in});
      linear_backward_weight(dy.narrow(row, row + n), x.narrow(row, row + n), dwg);
      const Tensor got = dw.view({groups, out * in}).narrow(g, g + 1);
      if (n > 0) {
        EXPECT_LT(relative_error(got, dwg), 1e-6) << "group " << g;
      } else {
        EXPECT_EQ(got.to_vector(), std::vector<float>(static_cast<size_t>(out * in), 0.0f));
      }
      row += n;
    }
  }
}

TEST(GroupedLinear, RejectsCountsThatDoNotCoverTheRows) {
  const Tensor x = Tensor::zeros({4, 3});
  const Tensor w = Tensor::zeros({2, 5, 3});
  Tensor y = Tensor::empty({4, 5});
  EXPECT_THROW(grouped_linear_forward(x, w, {1, 2}, y), Error);
  EXPECT_THROW(grouped_linear_forward(x, w, {4}, y), Error);
}

}  // namespace
}  // namespace trident::ops::testing
