#include "tests/support/grpo_runs.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <map>

#include "runtime/config/config.h"
#include "runtime/train/placement.h"
#include "runtime/train/precision.h"
#include "tests/support/layout_runs.h"
#include "tests/support/mpi_helpers.h"

namespace trident::testing {

config::TridentConfig grpo_layout_config() {
  config::TridentConfig config = config::load_config(config::resolve_config_path("tiny"));
  config::apply_overrides(config, {"model.initializer_range=0.05", "model.first_k_dense_replace=1",
                                   "train.seed=11", "train.adam_eps=1e-6"});
  return config;
}

namespace {
// The KL coefficient of every layout run.
constexpr double kBeta = 0.04;
}  // namespace

train::grpo::GrpoOptions grpo_test_options(const config::TridentConfig& config,
                                           const std::string& loss_type) {
  config::TridentConfig c = config;
  config::apply_overrides(
      c, {"grpo.prompts_per_step=3", "grpo.group_size=3", "grpo.max_new_tokens=6", "grpo.lr=3e-3",
          "grpo.warmup_steps=2", "grpo.updates_per_batch=2", "data.task_digits=1",
          "grpo.loss_type=" + loss_type});
  train::grpo::GrpoOptions options = train::grpo::grpo_options(c);
  options.objective.beta = kBeta;
  options.sampling.temperature = 1.5;
  // An external reward of the completion's JSON line. awk, not an interpreter: every rank of
  // every layout runs it once per step, and a Python start-up per call was a fifth of the sweep.
  options.reward_command = "awk '{ print length($0) % 5 }'";
  return options;
}

void GrpoRun::run(int64_t count) {
  const int64_t first = static_cast<int64_t>(steps.size()) + 1;
  for (int64_t s = first; s < first + count; ++s) steps.push_back(trainer->step(s));
}

GrpoRun make_grpo_run(const config::TridentConfig& config,
                      const train::grpo::GrpoOptions& options) {
  GrpoRun run;
  run.context = context_for(config);
  run.policy = train::grpo::build_policy(config.model(), config.parallel(), config.train().seed(),
                                         *run.context, train::model_precision(config.train()),
                                         train::training_device(config.train()));
  run.trainer = std::make_unique<train::grpo::GrpoTrainer>(*run.policy, options, *run.context,
                                                           config.parallel());
  return run;
}

const GrpoRun& one_rank_grpo(const config::TridentConfig& config,
                             const train::grpo::GrpoOptions& options, int64_t steps) {
  config::TridentConfig alone = config;
  *alone.mutable_parallel() = config::default_config().parallel();
  static std::map<std::string, GrpoRun> runs;
  const std::string key = config::to_text(alone) + "#" +
                          std::to_string(static_cast<int>(options.loss_type)) + "#" +
                          std::to_string(steps);
  auto it = runs.find(key);
  if (it == runs.end()) {
    GrpoRun run = make_grpo_run(alone, options);
    run.run(steps);
    it = runs.emplace(key, std::move(run)).first;
  }
  return it->second;
}

void expect_grpo_step_matches(const train::grpo::GrpoStepMetrics& got,
                              const train::grpo::GrpoStepMetrics& want) {
  // Rollouts and rewards come from the same keyed samples: identical, not close.
  EXPECT_EQ(got.accuracy, want.accuracy);
  EXPECT_EQ(got.format_rate, want.format_rate);
  EXPECT_EQ(got.completion_length, want.completion_length);
  EXPECT_EQ(got.truncated_fraction, want.truncated_fraction);
  EXPECT_EQ(got.reward, want.reward);
  EXPECT_EQ(got.reward_std, want.reward_std);
  // The first update's loss is a sum of advantages (terms of order one) that nearly cancel, plus
  // β·KL, whose per-token terms are differences of nearly equal log-probabilities: round-off of
  // the former is not counted below 1e-9, and the latter has the KL's own tolerance (below).
  EXPECT_NEAR(got.loss, want.loss,
              1e-6 * std::max(std::abs(want.loss), 1e-9) + kBeta * 1e-4 * std::abs(want.kl))
      << "step " << want.step;
  EXPECT_LE(relative_difference(got.grad_norm, want.grad_norm), 1e-6)
      << "step " << want.step << " grad norm " << got.grad_norm << " vs " << want.grad_norm;
  EXPECT_LE(relative_difference(got.kl, want.kl), 1e-4) << "step " << want.step;
  EXPECT_LE(relative_difference(got.entropy, want.entropy), 1e-5) << "step " << want.step;
  EXPECT_TRUE(same_on_every_rank(got.loss));
  EXPECT_TRUE(same_on_every_rank(got.grad_norm));
  EXPECT_TRUE(same_on_every_rank(got.entropy));
}

}  // namespace trident::testing
