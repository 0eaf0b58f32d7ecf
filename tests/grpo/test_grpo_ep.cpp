// GRPO with expert parallelism under mpirun: dp = world size, ep = 2 (each rank holds half the
// routed experts and rolls out its own prompt groups; with 4 ranks every expert is held by two
// ranks, the edp group). Every MoE forward is a collective over the EP group and the ranks have
// different work (3 prompt groups over the ranks, completions that stop at different steps), so
// this also exercises the lock step of rollouts, scoring and updates.
// Each step must equal one rank holding the whole model and batch: the same rollouts, loss and
// gradient norm (experts counted once), and every held parameter equal to the reference's.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <memory>
#include <string>
#include <vector>

#include "parallel/comm/mpi_backend.h"
#include "parallel/comm/mpi_comm.h"
#include "parallel/mesh.h"
#include "parallel/ep/expert_parallel_moe.h"
#include "runtime/config/config.h"
#include "runtime/train/grpo/grpo_trainer.h"
#include "tests/grpo/grpo_step_match.h"
#include "tests/grpo/grpo_test_model.h"
#include "tests/parallel/test_helpers.h"

namespace trident::train::grpo {
namespace {

using parallel::testing::world_rank;
using parallel::testing::world_size;

// Every parameter this rank holds equals the reference's of the same name (routed experts are
// named by their global index); returns how many routed experts' tensors were compared.
int64_t expect_held_parameters_match(const models::DeepSeekV3Model& ep,
                                     const models::DeepSeekV3Model& one) {
  int64_t experts = 0;
  for (const models::Parameter& p : ep.params().parameters()) {
    const models::Parameter& q = one.params().get(p.spec->name);
    EXPECT_LE(relative_error(p.value, q.value), 1e-5)
        << p.spec->name << " on rank " << world_rank();
    if (p.spec->placement.expert_parallel) ++experts;
  }
  return experts;
}

class GrpoExpertParallel : public ::testing::TestWithParam<std::string> {};

TEST_P(GrpoExpertParallel, StepsMatchOneRank) {
  const int ranks = world_size();
  ASSERT_EQ(ranks % 2, 0) << "run with an even number of ranks";
  config::ParallelConfig layout;
  layout.set_dp(ranks);
  layout.set_ep(2);
  static const parallel::Mesh mesh(parallel::mesh_sizes_from_config(layout));
  const auto dp = std::make_shared<parallel::MpiBackend>(mesh.dp());
  const auto ep = std::make_shared<parallel::MpiBackend>(mesh.ep());
  const auto edp = std::make_shared<parallel::MpiBackend>(mesh.edp());
  ASSERT_EQ(dp->size(), ranks);
  ASSERT_EQ(ep->size(), 2);
  ASSERT_EQ(edp->size(), ranks / 2);
  const config::ModelConfig model_config = testing::grpo_tiny_config(0.05);
  GrpoParallel parallel;
  parallel.dp = dp.get();
  parallel.ep = ep.get();
  parallel.edp = edp.get();
  parallel.setup = parallel::ep::expert_parallel_setup(model_config, layout, ep);
  models::DeepSeekV3Model ep_model(model_config, 7, parallel.setup);
  models::DeepSeekV3Model one_model(model_config, 7);
  ASSERT_LT(ep_model.params().numel(), one_model.params().numel()) << "experts not split";

  const GrpoOptions options = multi_rank_test_options(GetParam());
  GrpoTrainer split(ep_model, options, parallel);
  GrpoTrainer one(one_model, options);
  for (int64_t step = 1; step <= 3; ++step) {
    SCOPED_TRACE("step " + std::to_string(step));
    const GrpoStepMetrics a = split.step(step);
    const GrpoStepMetrics b = one.step(step);
    expect_step_matches_one_rank(a, b);
    EXPECT_GT(expect_held_parameters_match(ep_model, one_model), 0);
  }
  // The update must have moved the policy, or the comparison proves nothing.
  models::DeepSeekV3Model initial(model_config, 7);
  EXPECT_GT(relative_error(one_model.params().flat_values(), initial.params().flat_values()),
            1e-4);
}

INSTANTIATE_TEST_SUITE_P(LossTypes, GrpoExpertParallel, ::testing::Values("grpo", "dr_grpo"));

}  // namespace
}  // namespace trident::train::grpo
