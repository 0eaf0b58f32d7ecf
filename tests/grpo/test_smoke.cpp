// A few GRPO steps on the tiny model: finite metrics, a moving policy, a working reference,
// external rewards and zero-variance filtering wired through the trainer.
#include <gtest/gtest.h>

#include <cmath>

#include "runtime/config/config.h"
#include "runtime/train/grpo/grpo_trainer.h"
#include "tests/grpo/grpo_test_model.h"

namespace trident::train::grpo {
namespace {

GrpoOptions smoke_options() {
  config::TridentConfig config = config::default_config();
  config::apply_overrides(
      config, {"grpo.prompts_per_step=2", "grpo.group_size=3", "grpo.max_new_tokens=6",
               "grpo.lr=1e-3", "grpo.beta=0.04", "grpo.updates_per_batch=2", "data.task_digits=1"});
  return grpo_options(config);
}

// Rewards that vary within a group, so the advantages (and the update) are not zero.
GrpoOptions varied_reward_options() {
  GrpoOptions options = smoke_options();
  options.reward_command =
      "/usr/bin/python3 -c \"import sys, json\n"
      "for l in sys.stdin: print(sum(map(ord, json.loads(l)['completion'])) % 5)\"";
  return options;
}

void expect_finite(const GrpoStepMetrics& m) {
  for (const double v : {m.reward, m.accuracy, m.format_rate, m.kl, m.clip_fraction,
                         m.completion_length, m.entropy, m.loss, m.grad_norm}) {
    EXPECT_TRUE(std::isfinite(v));
  }
}

TEST(GrpoSmoke, StepsProduceFiniteMetricsAndMoveThePolicy) {
  models::DeepSeekV3Model model(testing::grpo_tiny_config(0.05), 1);
  GrpoOptions options = varied_reward_options();
  const std::vector<float> before = model.params().flat_values().to_vector();
  GrpoTrainer trainer(model, options);
  for (int64_t step = 1; step <= 3; ++step) {
    const GrpoStepMetrics m = trainer.step(step);
    expect_finite(m);
    EXPECT_GT(m.completion_length, 0.0);
    EXPECT_GT(m.entropy, 0.0);
    EXPECT_GE(m.kl, 0.0);  // k3 is non-negative
  }
  const std::vector<float> after = model.params().flat_values().to_vector();
  double moved = 0.0;
  for (size_t i = 0; i < before.size(); ++i) moved += std::abs(after[i] - before[i]);
  EXPECT_GT(moved, 0.0);
}

TEST(GrpoSmoke, FirstUpdateSeesRatioOneAndNoKl) {
  // With μ = 1 the first update runs at the rollout policy, which is also the reference:
  // ρ = 1 exactly (no clipping) and every KL estimate is 0; with μ = 2 the second update
  // sees the moved policy.
  models::DeepSeekV3Model model(testing::grpo_tiny_config(0.05), 1);
  GrpoOptions options = varied_reward_options();
  options.updates_per_batch = 1;
  GrpoTrainer once(model, options);
  const GrpoStepMetrics first = once.step(1);
  EXPECT_EQ(first.kl, 0.0);
  EXPECT_EQ(first.clip_fraction, 0.0);
  EXPECT_GT(first.grad_norm, 0.0);

  models::DeepSeekV3Model twice_model(testing::grpo_tiny_config(0.05), 1);
  options.updates_per_batch = 2;
  GrpoTrainer twice(twice_model, options);
  EXPECT_GT(twice.step(1).kl, 0.0);
}

TEST(GrpoSmoke, ReferenceRefreshResetsTheKl) {
  // μ = 1: the KL of step 2 is 0 when the reference was refreshed to the step-2 policy, and
  // positive when it stayed at the initial one.
  GrpoOptions options = varied_reward_options();
  options.updates_per_batch = 1;
  options.ref_refresh_every = 1;
  models::DeepSeekV3Model refreshed_model(testing::grpo_tiny_config(0.05), 1);
  GrpoTrainer refreshed(refreshed_model, options);
  refreshed.step(1);
  EXPECT_EQ(refreshed.step(2).kl, 0.0);
  options.ref_refresh_every = 0;
  models::DeepSeekV3Model frozen_model(testing::grpo_tiny_config(0.05), 1);
  GrpoTrainer frozen(frozen_model, options);
  frozen.step(1);
  EXPECT_GT(frozen.step(2).kl, 0.0);
}

// bf16 weights and activations (docs/precision.md): the reference is built in the policy's
// precision and its bf16 weight copies follow every refresh, so with μ = 1 the KL is exactly 0 at
// step 1 and, after a refresh, at step 2.
TEST(GrpoSmoke, Bf16ReferenceFollowsThePolicy) {
  GrpoOptions options = varied_reward_options();
  options.updates_per_batch = 1;
  options.ref_refresh_every = 1;
  models::ModelParallel bf16;
  bf16.precision = models::Precision{DType::BF16, DType::BF16};
  models::DeepSeekV3Model model(testing::grpo_tiny_config(0.05), 1, bf16);
  GrpoTrainer trainer(model, options);
  ASSERT_NE(trainer.reference(), nullptr);
  EXPECT_EQ(trainer.reference()->params().precision().weights, DType::BF16);
  const GrpoStepMetrics first = trainer.step(1);
  expect_finite(first);
  EXPECT_EQ(first.kl, 0.0);
  EXPECT_GT(first.grad_norm, 0.0);
  EXPECT_EQ(trainer.step(2).kl, 0.0);
}

TEST(GrpoSmoke, MaskedTruncatedCompletionsGiveNoGradient) {
  // No stop string and 6 new tokens: the tiny model's completions all end by length.
  GrpoOptions options = varied_reward_options();
  options.sampling.stop.clear();
  options.sampling.stop_at_eos = false;
  options.mask_truncated = true;
  models::DeepSeekV3Model masked_model(testing::grpo_tiny_config(0.05), 1);
  GrpoTrainer masked(masked_model, options);
  const GrpoStepMetrics m = masked.step(1);
  EXPECT_EQ(m.truncated_fraction, 1.0);
  EXPECT_EQ(m.grad_norm, 0.0);
  EXPECT_EQ(m.loss, 0.0);
  options.mask_truncated = false;
  models::DeepSeekV3Model kept_model(testing::grpo_tiny_config(0.05), 1);
  GrpoTrainer kept(kept_model, options);
  EXPECT_GT(kept.step(1).grad_norm, 0.0);
}

TEST(GrpoSmoke, ZeroVarianceGroupsAreFilteredAndNothingMoves) {
  models::DeepSeekV3Model model(testing::grpo_tiny_config(0.05), 1);
  GrpoOptions options = smoke_options();
  options.reward_command = "cat > /dev/null; for i in 1 2 3 4 5 6; do echo 1; done";
  options.filter_zero_variance = true;
  const std::vector<float> before = model.params().flat_values().to_vector();
  GrpoTrainer trainer(model, options);
  const GrpoStepMetrics m = trainer.step(1);
  EXPECT_EQ(m.filtered_groups, 2);
  EXPECT_DOUBLE_EQ(m.reward, 1.0);
  EXPECT_EQ(model.params().flat_values().to_vector(), before);
}

TEST(GrpoSmoke, GroupAndDifficultyMetricsFollowTheRewards) {
  // Group 0 ("1+1=", no carry) is rewarded 1 for every sample: zero variance. Group 1
  // ("58+67=", two carries) gets rewards that vary with the completion.
  models::DeepSeekV3Model model(testing::grpo_tiny_config(0.05), 1);
  GrpoOptions options = smoke_options();
  options.reward_command =
      "/usr/bin/python3 -c \"import sys, json\n"
      "for l in sys.stdin:\n"
      "  r = json.loads(l)\n"
      "  print(1 if r['prompt'] == '1+1=' else sum(map(ord, r['completion'])) % 5)\"";
  GrpoTrainer trainer(model, options);
  const std::vector<GrpoPrompt> prompts = {{0, "1+1=", "2", 0}, {1, "58+67=", "125", 2}};
  const GrpoStepMetrics m = trainer.step(1, prompts);
  EXPECT_EQ(m.zero_variance_groups, 0.5);
  // The mean of the two groups' stds, the first of which is 0; the batch std is larger.
  EXPECT_GT(m.group_reward_std, 0.0);
  EXPECT_LT(m.group_reward_std, m.reward_std);
  // The untrained model answers nothing correctly: 0 in the buckets of the prompts' carries,
  // -1 (no prompt) in the others.
  EXPECT_EQ(m.accuracy_by_carries[0], 0.0);
  EXPECT_EQ(m.accuracy_by_carries[1], -1.0);
  EXPECT_EQ(m.accuracy_by_carries[2], 0.0);
  EXPECT_EQ(m.accuracy_by_carries[3], -1.0);
  EXPECT_GE(m.completion_length_max, m.completion_length);
  EXPECT_LE(m.completion_length_max, static_cast<double>(options.sampling.max_new_tokens));
}

}  // namespace
}  // namespace trident::train::grpo
