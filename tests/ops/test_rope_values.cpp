// RoPE and the YaRN table against the formulas of docs/model.md.
#include <gtest/gtest.h>

#include <cmath>
#include <numbers>
#include <random>

#include "gradient_check.h"
#include "ops/cpu/rope.h"

namespace trident::ops::testing {
namespace {

using namespace trident::ops::cpu;

// DeepSeek-V3: qk_rope_head_dim 64, rope_theta 10000, factor 40, original 4096, beta 32 / 1.
YarnSettings deepseek_v3_yarn() {
  YarnSettings yarn;
  yarn.theta = 10000.0;
  yarn.factor = 40.0;
  yarn.original_max_position = 4096;
  yarn.beta_fast = 32.0;
  yarn.beta_slow = 1.0;
  yarn.mscale = 1.0;
  yarn.mscale_all_dim = 1.0;
  return yarn;
}

double correction(double rotations) {
  return 64.0 * std::log(4096.0 / (rotations * 2.0 * std::numbers::pi)) / (2.0 * std::log(10000.0));
}

TEST(Yarn, DeepSeekV3InverseFrequenciesFollowTheRamp) {
  const double low = std::max(std::floor(correction(32.0)), 0.0);
  const double high = std::min(std::ceil(correction(1.0)), 63.0);
  ASSERT_EQ(low, 10.0);   // corr(32) = 10.47
  ASSERT_EQ(high, 23.0);  // corr(1) = 22.51
  const RopeTable table = make_rope_table(64, 2, deepseek_v3_yarn());
  ASSERT_EQ(table.cos.shape(), (Shape{2, 32}));
  // mscale == mscale_all_dim: no magnitude change, so position 1 holds angle inv_freq_j.
  for (int64_t j = 0; j < 32; ++j) {
    const double extra = std::pow(10000.0, -2.0 * static_cast<double>(j) / 64.0);
    const double inter = extra / 40.0;
    const double ramp = std::clamp((static_cast<double>(j) - low) / (high - low), 0.0, 1.0);
    const double expected = inter * ramp + extra * (1.0 - ramp);
    if (j <= 10) {
      EXPECT_EQ(expected, extra);
    }
    if (j >= 23) {
      EXPECT_EQ(expected, inter);
    }
    const double angle = std::atan2(table.sin.item(32 + j), table.cos.item(32 + j));
    EXPECT_NEAR(angle / expected, 1.0, 1e-6) << "pair " << j;
    EXPECT_EQ(table.cos.item(j), 1.0f);  // position 0
    EXPECT_EQ(table.sin.item(j), 0.0f);
  }
}

TEST(Yarn, MscaleRatioScalesCosAndSin) {
  EXPECT_NEAR(yarn_mscale(40.0, 1.0), 1.0 + 0.1 * std::log(40.0), 1e-15);
  EXPECT_EQ(yarn_mscale(1.0, 1.0), 1.0);
  EXPECT_EQ(yarn_mscale(0.5, 3.0), 1.0);
  YarnSettings yarn = deepseek_v3_yarn();
  yarn.mscale = 0.707;
  const double ratio = yarn_mscale(40.0, 0.707) / yarn_mscale(40.0, 1.0);
  const RopeTable table = make_rope_table(64, 50, yarn);
  for (int64_t i : {0, 17, 31, 1000, 1599}) {
    const double c = table.cos.item(i), s = table.sin.item(i);
    EXPECT_NEAR(std::sqrt(c * c + s * s), ratio, 1e-6) << "entry " << i;
  }
}

TEST(Yarn, FactorOneIsPlainRope) {
  const RopeTable table = make_rope_table(8, 4, YarnSettings{});
  for (int64_t j = 0; j < 4; ++j) {
    const double inv_freq = std::pow(10000.0, -2.0 * static_cast<double>(j) / 8.0);
    EXPECT_NEAR(table.cos.item(3 * 4 + j), std::cos(3.0 * inv_freq), 1e-7);
    EXPECT_NEAR(table.sin.item(3 * 4 + j), std::sin(3.0 * inv_freq), 1e-7);
  }
}

TEST(Rope, RotatesAdjacentPairsPerHeadAndWorksInPlace) {
  const RopeTable table = make_rope_table(4, 16, YarnSettings{});
  std::mt19937 rng(3);
  const int64_t tokens = 3, heads = 2;
  const Tensor x = random_tensor({tokens, heads, 4}, rng);
  const Tensor positions = Tensor::from_ints({5, 0, 11}, {tokens});
  Tensor y = Tensor::empty(x.shape());
  rope_forward(x, positions, table, y);
  for (int64_t t = 0; t < tokens; ++t) {
    const double p = positions.item(t);
    for (int64_t h = 0; h < heads; ++h) {
      for (int64_t j = 0; j < 2; ++j) {
        const double theta = p * std::pow(10000.0, -2.0 * static_cast<double>(j) / 4.0);
        const int64_t base = (t * heads + h) * 4 + 2 * j;
        const double a = x.item(base), b = x.item(base + 1);
        EXPECT_NEAR(y.item(base), a * std::cos(theta) - b * std::sin(theta), 1e-6);
        EXPECT_NEAR(y.item(base + 1), a * std::sin(theta) + b * std::cos(theta), 1e-6);
      }
    }
  }
  Tensor in_place = x.clone();
  rope_forward(in_place, positions, table, in_place);
  EXPECT_EQ(relative_error(in_place, y), 0.0);
  // Without a magnitude change the rotation is orthogonal: backward undoes forward.
  rope_backward(in_place, positions, table, in_place);
  EXPECT_LT(relative_error(in_place, x), 1e-6);
}

TEST(Rope, RejectsPositionsBeyondTheTable) {
  const RopeTable table = make_rope_table(4, 8, YarnSettings{});
  const Tensor x = Tensor::zeros({1, 4});
  Tensor y = Tensor::empty({1, 4});
  EXPECT_THROW(rope_forward(x, Tensor::from_ints({8}, {1}), table, y), Error);
}

}  // namespace
}  // namespace trident::ops::testing
