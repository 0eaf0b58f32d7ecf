// The GRPO arithmetic against the worked values of the design notes and hand examples.
#include <gtest/gtest.h>

#include <cmath>

#include "runtime/train/grpo/loss.h"

namespace trident::train::grpo {
namespace {

TEST(GrpoAdvantages, WorkedValuesSampleAndPopulationStd) {
  const std::vector<double> rewards{1, 0, 0, 1};
  AdvantageOptions sample;
  sample.sample_std = true;
  const auto a = group_advantages(rewards, 4, sample);
  EXPECT_NEAR(a[0], 0.866025, 1e-6);
  EXPECT_NEAR(a[1], -0.866025, 1e-6);
  EXPECT_NEAR(a[2], -0.866025, 1e-6);
  EXPECT_NEAR(a[3], 0.866025, 1e-6);
  AdvantageOptions population;
  population.sample_std = false;
  const auto p = group_advantages(rewards, 4, population);
  EXPECT_NEAR(p[0], 1.0, 1e-6);
  EXPECT_NEAR(p[1], -1.0, 1e-6);
}

TEST(GrpoAdvantages, AllEqualRewardsGiveZeroNotNan) {
  for (const AdvantageScale scale :
       {AdvantageScale::Group, AdvantageScale::Batch, AdvantageScale::None}) {
    AdvantageOptions o;
    o.scale = scale;
    // Group 0 flat, group 1 not; the batch-scale case still leaves group 0 at exactly 0.
    const auto a = group_advantages({0.1, 0.1, 0.1, 1.0, 0.0, 0.5}, 3, o);
    for (int i = 0; i < 3; ++i) {
      EXPECT_EQ(a[static_cast<size_t>(i)], 0.0);
    }
    for (const double v : a) EXPECT_TRUE(std::isfinite(v));
  }
  const auto zero = group_advantages({0, 0, 0, 0}, 4, AdvantageOptions{});
  for (const double v : zero) EXPECT_EQ(v, 0.0);
  EXPECT_EQ(zero_variance_groups({1, 1, 0, 1}, 2), (std::vector<bool>{true, false}));
}

TEST(GrpoAdvantages, BatchAndNoneScales) {
  const std::vector<double> rewards{1, 0, 3, 1};
  AdvantageOptions none;
  none.scale = AdvantageScale::None;
  const auto n = group_advantages(rewards, 2, none);
  EXPECT_DOUBLE_EQ(n[0], 0.5);
  EXPECT_DOUBLE_EQ(n[2], 1.0);
  AdvantageOptions batch;
  batch.scale = AdvantageScale::Batch;
  const auto b = group_advantages(rewards, 2, batch);
  // batch mean 1.25, population std sqrt(((0.25^2 + 1.25^2 + 1.75^2 + 0.25^2)/4)) = sqrt(1.1875)
  EXPECT_NEAR(b[0], 0.5 / std::sqrt(1.1875), 1e-7);
  EXPECT_NEAR(b[3], -1.0 / std::sqrt(1.1875), 1e-7);
}

TEST(GrpoKl, WorkedValues) {
  EXPECT_NEAR(kl_term(-1.0, -1.2, KlEstimator::K1).value, 0.2, 1e-12);
  EXPECT_NEAR(kl_term(-1.0, -1.2, KlEstimator::K2).value, 0.02, 1e-12);
  EXPECT_NEAR(kl_term(-1.0, -1.2, KlEstimator::K3).value, 0.018731, 1e-6);
  // Derivatives against central differences in log π_θ.
  for (const KlEstimator k : {KlEstimator::K1, KlEstimator::K2, KlEstimator::K3}) {
    const double h = 1e-6;
    const double fd =
        (kl_term(-1.0 + h, -1.2, k).value - kl_term(-1.0 - h, -1.2, k).value) / (2 * h);
    EXPECT_NEAR(kl_term(-1.0, -1.2, k).dlogp, fd, 1e-8);
  }
}

TEST(GrpoObjective, WorkedClippedValues) {
  ObjectiveOptions o;  // ε = 0.2, β = 0
  const TokenObjective up = token_objective(std::log(1.5), 0.0, 0.0, 1.0, o);
  EXPECT_NEAR(up.value, 1.2, 1e-12);
  EXPECT_TRUE(up.clipped);
  EXPECT_EQ(up.dlogp, 0.0);
  const TokenObjective down = token_objective(std::log(0.5), 0.0, 0.0, -1.0, o);
  EXPECT_NEAR(down.value, -0.8, 1e-12);
  EXPECT_TRUE(down.clipped);
  // Inside the range (or on the side the advantage penalises) the gradient is ρA.
  const TokenObjective inside = token_objective(std::log(1.1), 0.0, 0.0, 2.0, o);
  EXPECT_FALSE(inside.clipped);
  EXPECT_NEAR(inside.value, 2.2, 1e-12);
  EXPECT_NEAR(inside.dlogp, 2.2, 1e-12);
  const TokenObjective pessimistic = token_objective(std::log(0.5), 0.0, 0.0, 1.0, o);
  EXPECT_FALSE(pessimistic.clipped);
  EXPECT_NEAR(pessimistic.value, 0.5, 1e-12);
  // Asymmetric clip (ε_high = 0.28).
  o.epsilon_high = 0.28;
  EXPECT_NEAR(token_objective(std::log(1.5), 0.0, 0.0, 1.0, o).value, 1.28, 1e-12);
}

TEST(GrpoObjective, KlPenaltyEntersValueAndGradient) {
  ObjectiveOptions o;
  o.beta = 0.1;
  o.kl = KlEstimator::K3;
  const TokenObjective t = token_objective(-1.0, -1.0, -1.2, 0.5, o);
  EXPECT_NEAR(t.value, 0.5 - 0.1 * 0.018730753, 1e-8);
  const double h = 1e-6;
  const double fd = (token_objective(-1.0 + h, -1.0, -1.2, 0.5, o).value -
                     token_objective(-1.0 - h, -1.0, -1.2, 0.5, o).value) /
                    (2 * h);
  EXPECT_NEAR(t.dlogp, fd, 1e-7);
}

// Two completions with token objectives {1, 2, 3} and {4}: each loss type on the hand example.
double aggregate(const std::vector<std::vector<double>>& s, const std::vector<int64_t>& counted,
                 LossType type, int64_t max_len) {
  const auto c = completion_coefficients(counted, type, max_len);
  double j = 0.0;
  for (size_t i = 0; i < s.size(); ++i) {
    if (counted[i] == 0) continue;  // a masked completion contributes nothing
    for (const double v : s[i]) j += c[i] * v;
  }
  return j;
}

TEST(GrpoAggregation, EachLossTypeOnAHandExample) {
  const std::vector<std::vector<double>> s{{1, 2, 3}, {4}};
  const std::vector<int64_t> counted{3, 1};
  EXPECT_NEAR(aggregate(s, counted, LossType::Grpo, 8), (2.0 + 4.0) / 2.0, 1e-12);
  EXPECT_NEAR(aggregate(s, counted, LossType::Bnpo, 8), 10.0 / 4.0, 1e-12);
  EXPECT_NEAR(aggregate(s, counted, LossType::DrGrpo, 8), 10.0 / (2.0 * 8.0), 1e-12);
  EXPECT_EQ(parse_loss_type("dapo"), LossType::Bnpo);
  EXPECT_THROW(parse_loss_type("ppo"), std::exception);
  EXPECT_THROW(parse_kl_estimator("k4"), std::exception);
  EXPECT_THROW(parse_advantage_scale("rank"), std::exception);
}

TEST(GrpoAggregation, TruncatedCompletionsAreMasked) {
  // The second completion was truncated: with masking its tokens count 0.
  const std::vector<std::vector<double>> s{{1, 2, 3}, {4, 4, 4, 4}};
  const std::vector<int64_t> masked{3, 0};
  EXPECT_NEAR(aggregate(s, masked, LossType::Grpo, 4), 2.0 / 2.0, 1e-12);
  EXPECT_NEAR(aggregate(s, masked, LossType::Bnpo, 4), 6.0 / 3.0, 1e-12);
  EXPECT_NEAR(aggregate(s, masked, LossType::DrGrpo, 4), 6.0 / 8.0, 1e-12);
  const std::vector<int64_t> unmasked{3, 4};
  EXPECT_NEAR(aggregate(s, unmasked, LossType::Bnpo, 4), 22.0 / 7.0, 1e-12);
}

}  // namespace
}  // namespace trident::train::grpo
