// GRPO data parallel under mpirun: the world's ranks split each step's prompt groups, and every
// rank must end up where one rank holding the whole batch ends up — the same rollouts (accuracy,
// format rate, lengths), the same loss and gradient norm, the same weights after each step.
// Every rank also runs the one-rank reference itself, so the comparison needs no file exchange.
#include <gtest/gtest.h>

#include <vector>

#include "parallel/comm/mpi_backend.h"
#include "parallel/comm/mpi_comm.h"
#include "runtime/config/config.h"
#include "runtime/train/grpo/grpo_trainer.h"
#include "tests/grpo/grpo_test_model.h"
#include "tests/parallel/test_helpers.h"

namespace trident::train::grpo {
namespace {

using parallel::testing::relative_difference;
using parallel::testing::same_on_every_rank;
using parallel::testing::world_size;

GrpoOptions dp_options(const std::string& loss_type, double beta) {
  config::TridentConfig config = config::default_config();
  config::apply_overrides(config, {"grpo.prompts_per_step=4", "grpo.group_size=3",
                                   "grpo.max_new_tokens=6", "grpo.lr=3e-3", "grpo.warmup_steps=2",
                                   "grpo.updates_per_batch=2", "data.task_digits=1",
                                   "grpo.loss_type=" + loss_type});
  GrpoOptions options = grpo_options(config);
  options.objective.beta = beta;
  // A reward that varies within groups (the rule reward of an untrained model is 0 everywhere).
  options.reward_command =
      "/usr/bin/python3 -c \"import sys, json\n"
      "for l in sys.stdin: print(sum(map(ord, json.loads(l)['completion'])) % 5)\"";
  return options;
}

void expect_same_step(const GrpoStepMetrics& dp, const GrpoStepMetrics& one) {
  EXPECT_EQ(dp.accuracy, one.accuracy);
  EXPECT_EQ(dp.format_rate, one.format_rate);
  EXPECT_EQ(dp.completion_length, one.completion_length);
  EXPECT_EQ(dp.truncated_fraction, one.truncated_fraction);
  EXPECT_EQ(dp.reward, one.reward);
  EXPECT_LE(relative_difference(dp.loss, one.loss), 1e-5) << dp.loss << " vs " << one.loss;
  EXPECT_LE(relative_difference(dp.grad_norm, one.grad_norm), 1e-5);
  EXPECT_LE(relative_difference(dp.kl, one.kl), 1e-4);
  EXPECT_LE(relative_difference(dp.entropy, one.entropy), 1e-5);
  EXPECT_TRUE(same_on_every_rank(dp.loss));
  EXPECT_TRUE(same_on_every_rank(dp.grad_norm));
}

class GrpoDataParallel : public ::testing::TestWithParam<std::string> {};

TEST_P(GrpoDataParallel, StepsMatchOneRank) {
  const parallel::MpiComm world = parallel::MpiComm::world();
  parallel::MpiBackend dp(world);
  ASSERT_EQ(dp.size(), world_size());
  const GrpoOptions options = dp_options(GetParam(), /*beta=*/0.04);
  const config::ModelConfig model_config = testing::grpo_tiny_config(0.05);
  models::DeepSeekV3Model split_model(model_config, 7), one_model(model_config, 7);
  GrpoTrainer split(split_model, options, &dp);
  GrpoTrainer one(one_model, options);
  for (int64_t step = 1; step <= 3; ++step) {
    SCOPED_TRACE("step " + std::to_string(step));
    const GrpoStepMetrics a = split.step(step);
    const GrpoStepMetrics b = one.step(step);
    expect_same_step(a, b);
    const Tensor wa = split_model.params().flat_values(), wb = one_model.params().flat_values();
    EXPECT_LE(relative_error(wa, wb), 1e-5);
  }
  // The update must have moved the policy, or the comparison proves nothing.
  models::DeepSeekV3Model initial(model_config, 7);
  EXPECT_GT(relative_error(one_model.params().flat_values(), initial.params().flat_values()),
            1e-4);
}

INSTANTIATE_TEST_SUITE_P(LossTypes, GrpoDataParallel,
                         ::testing::Values("grpo", "bnpo", "dr_grpo"));

}  // namespace
}  // namespace trident::train::grpo
