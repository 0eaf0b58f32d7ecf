// GRPO with tensor parallelism under mpirun: tp = 2 over 2 ranks, dp2·tp2 over 4, and the routed
// experts split over ep = 2 on top (ep2·tp2, and dp2·tp2·ep2: the EP group is the TP group), and
// over ep = 4 on 4 ranks (dp2·tp2·ep4: the EP group spans ranks with different prompt groups, so
// the forwards run in lock step). The TP ranks hold slices of
// attention, the dense FFN, shared experts, embedding and lm_head: rollouts sample from the
// gathered vocabulary rows, scores and the logits gradient use the vocabulary-parallel
// log-softmax. Each step must equal one rank holding the whole model and batch: the same
// rollouts and rewards, loss and gradient norm ≤ 1e-5 relative, and every parameter slice equal
// to the same slice of the one-rank tensor. Also: a sharded policy's checkpoint reads back on one
// rank as the policy, and a checkpoint written by one rank loads into the sharded layout.
#include <gtest/gtest.h>
#include <mpi.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "parallel/comm/mpi_backend.h"
#include "parallel/comm/mpi_comm.h"
#include "parallel/ep/token_split_moe.h"
#include "parallel/mesh.h"
#include "runtime/config/config.h"
#include "runtime/train/grpo/grpo_checkpoint.h"
#include "runtime/train/grpo/grpo_trainer.h"
#include "runtime/train/grpo/vocab_sharded.h"
#include "tests/grpo/grpo_step_match.h"
#include "tests/grpo/grpo_test_model.h"
#include "tests/parallel/test_helpers.h"

namespace trident::train::grpo {
namespace {

using parallel::testing::world_rank;
using parallel::testing::world_size;
using testing::slice_of;

// Every parameter this rank holds equals the same slice of the whole one's of the same name;
// returns how many were TP slices (not whole tensors).
int64_t expect_slices_match(const models::DeepSeekV3Model& sharded,
                            const models::DeepSeekV3Model& whole, double tolerance) {
  int64_t split = 0;
  for (const models::Parameter& p : sharded.params().parameters()) {
    const Tensor expected = slice_of(whole.params().get(p.spec->name).value, p.slice);
    const Tensor mine = Tensor::empty({p.value.numel()});
    std::copy_n(p.value.data<float>(), p.value.numel(), mine.data<float>());
    EXPECT_LE(relative_error(mine, expected), tolerance)
        << p.spec->name << " on rank " << world_rank();
    if (p.slice.dim >= 0) ++split;
  }
  return split;
}

// The comparison can fail: the neighbouring rank's slice of lm_head is not this rank's.
void expect_wrong_slice_detected(const models::DeepSeekV3Model& sharded,
                                 const models::DeepSeekV3Model& whole) {
  const models::Parameter& head = sharded.params().get("lm_head.weight");
  ASSERT_GE(head.slice.dim, 0) << "lm_head is not split";
  models::ShardSlice other = head.slice;
  const int64_t global = whole.params().get("lm_head.weight").value.size(head.slice.dim);
  other.begin = (other.begin + other.extent) % global;
  const Tensor mine = Tensor::empty({head.value.numel()});
  std::copy_n(head.value.data<float>(), head.value.numel(), mine.data<float>());
  EXPECT_GT(relative_error(mine, slice_of(whole.params().get("lm_head.weight").value, other)),
            1e-2);
}

// The groups of one dp × tp (× ep) layout of the world.
struct Layout {
  explicit Layout(int64_t tp, int64_t ep) {
    config.set_dp(world_size() / tp);
    config.set_tp(tp);
    config.set_ep(ep);
    mesh = std::make_unique<parallel::Mesh>(parallel::mesh_sizes_from_config(config));
    dp = std::make_shared<parallel::MpiBackend>(mesh->dp());
    tp_group = std::make_shared<parallel::MpiBackend>(mesh->tp());
    if (ep > 1) {
      ep_group = std::make_shared<parallel::MpiBackend>(mesh->ep());
      edp = std::make_shared<parallel::MpiBackend>(mesh->edp());
    }
  }
  models::ModelParallel model_parallel() const {
    models::ModelParallel p;
    p.tp = tp_group.get();
    p.tp_rank = tp_group->rank();
    p.tp_size = tp_group->size();
    return p;
  }
  GrpoParallel grpo(const config::ModelConfig& model) const {
    GrpoParallel p;
    p.dp = dp.get();
    if (ep_group) {
      p.ep = ep_group.get();
      p.edp = edp.get();
      p.setup = parallel::ep::expert_parallel_setup(model, config, ep_group, tp_group);
    }
    return p;
  }
  config::ParallelConfig config;
  std::unique_ptr<parallel::Mesh> mesh;
  std::shared_ptr<parallel::MpiBackend> dp, tp_group, ep_group, edp;
};

struct Case {
  std::string loss_type;
  int64_t ep = 1;
};
std::string case_name(const ::testing::TestParamInfo<Case>& info) {
  return info.param.loss_type + "_ep" + std::to_string(info.param.ep);
}

class GrpoTensorParallel : public ::testing::TestWithParam<Case> {};

TEST_P(GrpoTensorParallel, StepsMatchOneRank) {
  ASSERT_EQ(world_size() % 2, 0) << "run with an even number of ranks";
  if (GetParam().ep > world_size()) GTEST_SKIP() << "ep = " << GetParam().ep << " needs more ranks";
  const Layout layout(2, GetParam().ep);
  ASSERT_EQ(layout.tp_group->size(), 2);
  const config::ModelConfig model_config = testing::grpo_tiny_config(0.05);
  const GrpoParallel parallel = layout.grpo(model_config);
  models::DeepSeekV3Model tp_model(model_config, 7, layout.model_parallel(), parallel.setup);
  models::DeepSeekV3Model one_model(model_config, 7);
  ASSERT_TRUE(vocab_sharded(tp_model));
  ASSERT_LT(tp_model.params().numel(), one_model.params().numel()) << "nothing split";
  expect_wrong_slice_detected(tp_model, one_model);

  const GrpoOptions options = multi_rank_test_options(GetParam().loss_type);
  GrpoTrainer split(tp_model, options, parallel);
  GrpoTrainer one(one_model, options);
  for (int64_t step = 1; step <= 3; ++step) {
    SCOPED_TRACE("step " + std::to_string(step));
    const GrpoStepMetrics a = split.step(step);
    const GrpoStepMetrics b = one.step(step);
    expect_step_matches_one_rank(a, b);
    EXPECT_GT(expect_slices_match(tp_model, one_model, 1e-5), 0);
  }
  // The update must have moved the policy, or the comparison proves nothing.
  models::DeepSeekV3Model initial(model_config, 7);
  EXPECT_GT(relative_error(one_model.params().flat_values(), initial.params().flat_values()),
            1e-4);
}

INSTANTIATE_TEST_SUITE_P(Layouts, GrpoTensorParallel,
                         ::testing::Values(Case{"grpo", 1}, Case{"dr_grpo", 1}, Case{"grpo", 2},
                                           Case{"dr_grpo", 4}),
                         case_name);

// A path every rank agrees on (rank 0's temporary directory).
std::string shared_directory(const std::string& name) {
  std::string dir;
  if (world_rank() == 0) {
    dir = (std::filesystem::temp_directory_path() /
           (name + "-" + std::to_string(::getpid()))).string();
    std::filesystem::remove_all(dir);
  }
  int length = static_cast<int>(dir.size());
  MPI_Bcast(&length, 1, MPI_INT, 0, MPI_COMM_WORLD);
  dir.resize(static_cast<size_t>(length));
  MPI_Bcast(dir.data(), length, MPI_CHAR, 0, MPI_COMM_WORLD);
  return dir;
}

class GrpoShardedCheckpoint : public ::testing::TestWithParam<int64_t> {};

TEST_P(GrpoShardedCheckpoint, WritesAndLoadsAcrossLayouts) {
  const Layout layout(2, GetParam());
  const config::ModelConfig model_config = testing::grpo_tiny_config(0.05);
  const GrpoParallel parallel = layout.grpo(model_config);
  models::DeepSeekV3Model policy(model_config, 7, layout.model_parallel(), parallel.setup);
  {
    GrpoOptions options = multi_rank_test_options("grpo");
    options.updates_per_batch = 1;
    GrpoTrainer trainer(policy, options, parallel);
    trainer.step(1);  // weights that differ from any fresh init
  }
  config::TridentConfig config = config::default_config();
  *config.mutable_model() = model_config;
  *config.mutable_parallel() = layout.config;
  const std::string dir = shared_directory("grpo-tp-checkpoint");
  config.mutable_checkpoint()->set_dir(dir + "/sharded");
  // Written collectively by the sharded layout: one rank reads back exactly the policy.
  const std::string path = save_policy_checkpoint(config, policy, 1, MPI_COMM_WORLD);
  ASSERT_TRUE(std::filesystem::is_regular_file(path));
  models::DeepSeekV3Model whole(model_config, 99);
  load_policy_weights(path, whole, MPI_COMM_SELF);
  EXPECT_GT(expect_slices_match(policy, whole, 0.0), 0);
  // Written by one rank (another layout), loaded collectively into the sharded one (--init).
  config::TridentConfig one_rank = config;
  *one_rank.mutable_parallel() = config::ParallelConfig();
  one_rank.mutable_checkpoint()->set_dir(dir + "/whole");
  std::string whole_path;
  if (world_rank() == 0) whole_path = save_policy_checkpoint(one_rank, whole, 2, MPI_COMM_SELF);
  MPI_Barrier(MPI_COMM_WORLD);
  whole_path = dir + "/whole/step_2.h5";
  models::DeepSeekV3Model loaded(model_config, 99, layout.model_parallel(), parallel.setup);
  load_policy_weights(whole_path, loaded, MPI_COMM_WORLD);
  EXPECT_GT(expect_slices_match(loaded, whole, 0.0), 0);
  MPI_Barrier(MPI_COMM_WORLD);
  if (world_rank() == 0) std::filesystem::remove_all(dir);
}

INSTANTIATE_TEST_SUITE_P(ExpertParallel, GrpoShardedCheckpoint, ::testing::Values(1, 2));

}  // namespace
}  // namespace trident::train::grpo
