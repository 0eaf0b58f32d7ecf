// The CPU backend's own exp (ops/cpu/vector_math.h) against libm, its special values, the
// fixed-order sums, and the kernels built per instruction set: what runs on this machine (the
// AVX2 build where the CPU has it) must give the same bits as the formula built for the baseline.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <random>
#include <vector>

#include "gradient_check.h"
#include "ops/cpu/elementwise.h"
#include "ops/cpu/vector_math.h"

namespace trident::ops::testing {
namespace {

using cpu::detail::exp_f32;

// Distance in units in the last place of `reference` (fp32 spacing at that magnitude).
double ulps(float value, double reference) {
  const double spacing =
      std::nextafter(static_cast<float>(reference), std::numeric_limits<float>::infinity()) -
      static_cast<float>(reference);
  return std::fabs(static_cast<double>(value) - reference) / spacing;
}

TEST(VectorMath, ExpIsWithinTwoUlpsOfLibmOverTheNormalRange) {
  double worst = 0.0;
  float worst_at = 0.0f;
  // Every normal result: e^x ≥ FLT_MIN for x ≥ -87.33, finite for x ≤ 88.72.
  for (float x = -87.3f; x <= 88.7f; x += 0.000731f) {
    const double error = ulps(exp_f32(x), std::exp(static_cast<double>(x)));
    if (error > worst) {
      worst = error;
      worst_at = x;
    }
  }
  EXPECT_LT(worst, 2.0) << "at x = " << worst_at;
  EXPECT_EQ(exp_f32(0.0f), 1.0f);
}

TEST(VectorMath, ExpSpecialValues) {
  const float inf = std::numeric_limits<float>::infinity();
  EXPECT_EQ(exp_f32(inf), inf);
  EXPECT_EQ(exp_f32(88.8f), inf);  // beyond FLT_MAX
  EXPECT_EQ(exp_f32(-inf), 0.0f);
  EXPECT_EQ(exp_f32(-200.0f), 0.0f);
  EXPECT_TRUE(std::isnan(exp_f32(std::numeric_limits<float>::quiet_NaN())));
  // Subnormal results keep their value (to within their coarse spacing), never go negative.
  for (float x = -103.9f; x < -87.4f; x += 0.37f) {
    const double expected = std::exp(static_cast<double>(x));
    EXPECT_GE(exp_f32(x), 0.0f) << x;
    EXPECT_NEAR(exp_f32(x), expected,
                2.0 * std::numeric_limits<float>::denorm_min() + 1e-6 * expected)
        << x;
  }
  EXPECT_NEAR(cpu::detail::sigmoid_f32(-100.0f), 0.0f, 1e-40f);
  EXPECT_EQ(cpu::detail::sigmoid_f32(100.0f), 1.0f);
  EXPECT_EQ(cpu::detail::sigmoid_f32(0.0f), 0.5f);
}

TEST(VectorMath, SumsAreExactlyTheEightLaneOrderAndMaxIsTheMax) {
  std::mt19937 rng(7);
  std::normal_distribution<float> normal(0.0f, 10.0f);
  for (int64_t n : {0, 1, 7, 8, 9, 64, 100, 1001}) {
    std::vector<float> x(static_cast<size_t>(n)), y(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i) {
      x[static_cast<size_t>(i)] = normal(rng);
      y[static_cast<size_t>(i)] = normal(rng);
    }
    // The order the helpers promise: lane i % 8 gathers its terms in order, lanes added 0…7.
    double lanes[8] = {}, dot_lanes[8] = {};
    for (int64_t i = 0; i < n; ++i) {
      lanes[i % 8] += x[static_cast<size_t>(i)];
      dot_lanes[i % 8] +=
          static_cast<double>(x[static_cast<size_t>(i)]) * y[static_cast<size_t>(i)];
    }
    double sum = 0.0, dot = 0.0;
    for (int l = 0; l < 8; ++l) {
      sum += lanes[l];
      dot += dot_lanes[l];
    }
    EXPECT_EQ(cpu::detail::sum_f64(x.data(), n), sum) << n;
    EXPECT_EQ(cpu::detail::dot_f64(x.data(), y.data(), n), dot) << n;
    float best = -std::numeric_limits<float>::infinity();
    for (const float v : x) best = std::max(best, v);
    EXPECT_EQ(cpu::detail::max_f32(x.data(), n), best) << n;
  }
}

// swiglu's kernel is built for AVX2 and for the baseline; this test file is built for the
// baseline only. Equal bits show the AVX2 build neither fuses multiply-adds nor reorders.
TEST(VectorMath, TheKernelThatRunsHereGivesTheBaselineBits) {
  std::mt19937 rng(11);
  const int64_t n = 1000;  // not a multiple of any vector width
  const Tensor gate = random_tensor({n}, rng, 6.0f);
  const Tensor up = random_tensor({n}, rng, 2.0f);
  const Tensor dout = random_tensor({n}, rng);
  Tensor out = Tensor::empty({n});
  cpu::swiglu_forward(gate, up, out);
  Tensor dgate = Tensor::empty({n});
  Tensor dup = Tensor::empty({n});
  cpu::swiglu_backward(dout, gate, up, dgate, dup);
  for (int64_t i = 0; i < n; ++i) {
    const float g = gate.item(i), u = up.item(i), dy = dout.item(i);
    const float s = cpu::detail::sigmoid_f32(g);
    ASSERT_EQ(out.item(i), g * s * u) << i;
    ASSERT_EQ(dup.item(i), dy * g * s) << i;
    ASSERT_EQ(dgate.item(i), dy * u * s * (1.0f + g * (1.0f - s))) << i;
  }
}

}  // namespace
}  // namespace trident::ops::testing
