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
#include "tests/grpo/grpo_step_match.h"
#include "tests/grpo/grpo_test_model.h"
#include "tests/parallel/test_helpers.h"

namespace trident::train::grpo {
namespace {

using parallel::testing::relative_difference;
using parallel::testing::world_size;

// The multi-rank GRPO tests' options with 4 prompts per step and the configured sampling
// temperature.
GrpoOptions dp_options(const std::string& loss_type) {
  GrpoOptions options = multi_rank_test_options(loss_type);
  options.prompts_per_step = 4;
  options.sampling.temperature = grpo_options(config::default_config()).sampling.temperature;
  return options;
}

class GrpoDataParallel : public ::testing::TestWithParam<std::string> {};

TEST_P(GrpoDataParallel, StepsMatchOneRank) {
  const parallel::MpiComm world = parallel::MpiComm::world();
  parallel::MpiBackend dp(world);
  ASSERT_EQ(dp.size(), world_size());
  const GrpoOptions options = dp_options(GetParam());
  const config::ModelConfig model_config = testing::grpo_tiny_config(0.05);
  models::DeepSeekV3Model split_model(model_config, 7), one_model(model_config, 7);
  GrpoTrainer split(split_model, options, &dp);
  GrpoTrainer one(one_model, options);
  for (int64_t step = 1; step <= 3; ++step) {
    SCOPED_TRACE("step " + std::to_string(step));
    const GrpoStepMetrics a = split.step(step);
    const GrpoStepMetrics b = one.step(step);
    expect_step_matches_one_rank(a, b);
    // Stricter than the shared check for a loss below 1e-9.
    EXPECT_LE(relative_difference(a.loss, b.loss), 1e-5) << a.loss << " vs " << b.loss;
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
