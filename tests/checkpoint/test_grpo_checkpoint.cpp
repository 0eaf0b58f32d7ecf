// GRPO checkpoints across layouts, under mpirun: a trainer sharded over TP, EP or pipeline
// stages and trained one step is written collectively and resumes on one rank with exactly its
// policy and reference model and its counters (`trident grpo --resume`); a checkpoint written by
// one rank loads into the sharded layout (`trident grpo --init`) as exactly the one-rank
// weights, slice by slice.
#include <gtest/gtest.h>
#include <mpi.h>

#include <filesystem>
#include <string>

#include "runtime/config/config.h"
#include "runtime/train/grpo/grpo_checkpoint.h"
#include "tests/support/grpo_runs.h"
#include "tests/support/layout.h"
#include "tests/support/layout_runs.h"
#include "tests/support/mpi_helpers.h"
#include "tests/support/shared_temp_dir.h"

namespace trident::testing {
namespace {

class GrpoShardedCheckpoint : public ::testing::TestWithParam<Layout> {};

TEST_P(GrpoShardedCheckpoint, WritesAndLoadsAcrossLayouts) {
  const Layout layout = GetParam();
  if (layout.ranks() != world_size()) GTEST_SKIP() << layout.name() << " needs other ranks";
  config::TridentConfig config = grpo_layout_config();
  layout.apply(config);
  train::grpo::GrpoOptions options = grpo_test_options(config, "grpo");
  options.updates_per_batch = 1;
  GrpoRun run = make_grpo_run(config, options);
  run.run(1);  // weights that differ from any fresh init
  const SharedTempDir dir;
  config.mutable_checkpoint()->set_dir(dir / "sharded");
  // Written collectively by the sharded layout: one rank reads back exactly the policy.
  ASSERT_NE(run.trainer->reference(), nullptr) << "the test options have β > 0";
  const train::grpo::GrpoTrainer::ResumeState counters = run.trainer->resume_state();
  const std::string path =
      train::grpo::save_grpo_checkpoint(config, *run.trainer, {1, counters, 0.25}, MPI_COMM_WORLD);
  ASSERT_TRUE(std::filesystem::is_regular_file(path));
  config::TridentConfig alone = config;
  Layout{}.apply(alone);
  alone.mutable_train()->set_seed(99);
  GrpoRun whole = make_grpo_run(alone, options);
  const train::grpo::GrpoCheckpointState state =
      train::grpo::load_grpo_checkpoint(path, alone, *whole.trainer, MPI_COMM_SELF);
  EXPECT_EQ(held_weight_error(run.policy->params(), whole.policy->params()), 0.0);
  EXPECT_EQ(
      held_weight_error(run.trainer->reference()->params(), whole.trainer->reference()->params()),
      0.0);
  EXPECT_EQ(state.step, 1);
  EXPECT_EQ(state.eval_accuracy_before, 0.25);
  EXPECT_EQ(whole.trainer->resume_state().optimizer_steps, counters.optimizer_steps);
  EXPECT_EQ(counters.optimizer_steps, 1);
  // Written by one rank (another layout), loaded collectively into the sharded one (--init).
  alone.mutable_checkpoint()->set_dir(dir / "whole");
  if (world_rank() == 0) {
    train::grpo::save_grpo_checkpoint(alone, *whole.trainer, {2, counters, -1.0}, MPI_COMM_SELF);
  }
  MPI_Barrier(MPI_COMM_WORLD);
  config::TridentConfig reseeded = config;
  reseeded.mutable_train()->set_seed(99);
  const GrpoRun loaded = make_grpo_run(reseeded, options);
  train::grpo::load_policy_weights(dir / "whole/step_2.h5", *loaded.policy, MPI_COMM_WORLD);
  EXPECT_EQ(held_weight_error(loaded.policy->params(), whole.policy->params()), 0.0);
}

INSTANTIATE_TEST_SUITE_P(Sharded, GrpoShardedCheckpoint,
                         ::testing::Values(Layout{1, 1, 2, 1}, Layout{1, 1, 2, 2},
                                           Layout{2, 1, 1, 1}, Layout{1, 2, 2, 1},
                                           Layout{1, 2, 2, 2}, Layout{2, 1, 2, 2, "dualpipev"}),
                         LayoutName());

}  // namespace
}  // namespace trident::testing
