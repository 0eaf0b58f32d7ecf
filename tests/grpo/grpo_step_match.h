#pragma once
// What every multi-rank GRPO test shares: the options of the steps it compares, and the
// comparison it makes after each step (a sharded layout must give one rank's rollouts exactly
// and its loss, gradient norm, KL and entropy to fp32 round-off, with the same metrics on every
// rank).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <string>

#include "runtime/config/config.h"
#include "runtime/train/grpo/grpo_trainer.h"
#include "tests/parallel/test_helpers.h"

namespace trident::train::grpo {

// 3 prompts × 3 samples, μ = 2 updates, β > 0 (so the frozen reference, sharded like the
// policy, is compared too), temperature 1.5 (completions of different lengths) and an external
// reward that varies within a group (an untrained model's rule reward is all zero).
inline GrpoOptions multi_rank_test_options(const std::string& loss_type) {
  config::TridentConfig config = config::default_config();
  config::apply_overrides(config, {"grpo.prompts_per_step=3", "grpo.group_size=3",
                                   "grpo.max_new_tokens=6", "grpo.lr=3e-3", "grpo.warmup_steps=2",
                                   "grpo.updates_per_batch=2", "data.task_digits=1",
                                   "grpo.loss_type=" + loss_type});
  GrpoOptions options = grpo_options(config);
  options.objective.beta = 0.04;
  options.sampling.temperature = 1.5;
  options.reward_command =
      "/usr/bin/python3 -c \"import sys, json\n"
      "for l in sys.stdin: print(sum(map(ord, json.loads(l)['completion'])) % 5)\"";
  return options;
}

inline void expect_step_matches_one_rank(const GrpoStepMetrics& split, const GrpoStepMetrics& one) {
  using parallel::testing::relative_difference;
  using parallel::testing::same_on_every_rank;
  // Rollouts and rewards come from the same keyed samples: identical, not close.
  EXPECT_EQ(split.accuracy, one.accuracy);
  EXPECT_EQ(split.format_rate, one.format_rate);
  EXPECT_EQ(split.completion_length, one.completion_length);
  EXPECT_EQ(split.truncated_fraction, one.truncated_fraction);
  EXPECT_EQ(split.reward, one.reward);
  // The first update's loss is a sum of advantages (terms of order one) that nearly cancel:
  // relative to at least 1e-9, round-off of the terms is not counted as a difference.
  EXPECT_NEAR(split.loss, one.loss, 1e-5 * std::max(std::abs(one.loss), 1e-9));
  EXPECT_LE(relative_difference(split.grad_norm, one.grad_norm), 1e-5)
      << split.grad_norm << " vs " << one.grad_norm;
  EXPECT_LE(relative_difference(split.kl, one.kl), 1e-4);
  EXPECT_LE(relative_difference(split.entropy, one.entropy), 1e-5);
  EXPECT_TRUE(same_on_every_rank(split.loss));
  EXPECT_TRUE(same_on_every_rank(split.grad_norm));
}

}  // namespace trident::train::grpo
