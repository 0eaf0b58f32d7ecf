// Expert parallelism with tensor and data parallelism in the trainer must match one rank: the
// job's ranks fold into dp × tp, and the MoE layers refold the same ranks into edp × ep
// (ep dividing dp · tp). 20 steps of the tiny model give the one-rank losses and gradient
// norms (relative 1e-5) every step, the same expert loads (summed over dp, exactly: each token
// counted once) and, with the TP slices gathered to their global shape and each rank's own
// experts compared by expert index, the one-rank final weights (relative 1e-5).
//
// Layouts (skipped where they do not fold into the job's ranks): np 2: dp1·tp2·ep2; np 4:
// dp2·tp2·ep2 (edp 2: the experts' replicas sit on different dp indices), dp2·tp2·ep4
// (edp 1), dp1·tp4·ep2 (edp 2: replicas on different TP ranks of one dp index), dp1·tp4·ep4;
// np 8: the same folds with dp doubled, and dp4·tp2·ep8. The tiny model as a DeepSeek-V2
// (tests/models/test_configs.h: softmax group-limited routing, plain q_proj, 2 shared experts,
// no MTP, device and communication balance losses) on tp2·ep2, dp2·tp2·ep4 and dp1·tp4·ep2.
// Each with the all-to-all in 1 to 3 chunks, ZeRO-1 on and off; an uneven configuration
// (sequences of 15 tokens, one per micro-batch) makes the TP shares unequal.
//
// AdamW eps 1e-6 and lr 1e-3 as in tests/dp/test_mesh_training.cpp, for the reason given
// there (elements whose gradient sits at the fp32 round-off floor).
#include <gtest/gtest.h>
#include <mpi.h>

#include <cmath>
#include <cstdio>
#include <map>
#include <memory>
#include <ostream>
#include <string>
#include <vector>

#include "parallel/comm/mpi_backend.h"
#include "parallel/dp/reduce_sum.h"
#include "parallel/mesh.h"
#include "runtime/config/config.h"
#include "runtime/train/data_setup.h"
#include "runtime/train/trainer.h"
#include "tests/models/test_configs.h"
#include "tests/parallel/test_helpers.h"
#include "tests/tp/tp_test_util.h"

namespace trident::train {
namespace {

using parallel::testing::relative_difference;
using parallel::testing::same_on_every_rank;
using parallel::testing::world_size;

constexpr int64_t kSteps = 20;
constexpr double kTolerance = 1e-5;

// 16 rows in micro-batches of 2 (uneven: 8 rows of 15 tokens, one per micro-batch), clipping
// that bites, balance loss and bias update on.
config::TridentConfig base_config(bool uneven, bool v2 = false) {
  config::TridentConfig config = config::load_config(config::resolve_config_path("tiny"));
  config::apply_overrides(config, {"train.steps=20", "train.global_batch=16", "train.micro_batch=2",
                                   "train.grad_clip=0.5", "train.aux_loss_alpha=0.001",
                                   "train.bias_update_speed=0.001", "train.mtp_loss_weight=0.3",
                                   "train.adam_eps=1e-6", "train.lr=1e-3", "train.min_lr=1e-4"});
  if (uneven) {
    config::apply_overrides(config,
                            {"train.global_batch=8", "train.micro_batch=1", "train.seq_len=15"});
  }
  if (v2) config::apply_overrides(config, models::testing::tiny_v2_overrides());
  return config;
}

double max_over_ranks(double value) {
  double worst = 0.0;
  MPI_Allreduce(&value, &worst, 1, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
  return worst;
}

struct RunResult {
  std::vector<StepMetrics> steps;
  std::vector<models::ExpertLoad> last_loads;  // the last step's loads (one rank: global)
  std::unique_ptr<Trainer> trainer;
};

const RunResult& oracle(bool uneven, bool v2) {
  static std::map<std::pair<bool, bool>, RunResult> results;
  auto found = results.find({uneven, v2});
  if (found != results.end()) return found->second;
  config::TridentConfig config = base_config(uneven, v2);
  RunResult run;
  run.trainer = std::make_unique<Trainer>(config, make_train_sampler(config));
  for (int64_t s = 0; s < kSteps; ++s) run.steps.push_back(run.trainer->step());
  run.last_loads = run.trainer->model().expert_loads();
  return results.emplace(std::make_pair(uneven, v2), std::move(run)).first->second;
}

struct Layout {
  int tp = 2;
  int ep = 2;
  int chunks = 1;
  bool zero1 = false;
  bool uneven = false;
  bool v2 = false;  // the tiny model as a DeepSeek-V2
  std::string name() const {
    return "tp" + std::to_string(tp) + "ep" + std::to_string(ep) + "chunks" +
           std::to_string(chunks) + (zero1 ? "Zero1" : "Plain") + (uneven ? "Uneven" : "") +
           (v2 ? "DeepSeekV2" : "");
  }
};

void PrintTo(const Layout& layout, std::ostream* out) { *out << layout.name(); }

class ExpertTensorParallelTraining : public ::testing::TestWithParam<Layout> {};

TEST_P(ExpertTensorParallelTraining, MatchesOneRank) {
  const Layout layout = GetParam();
  const int world = world_size();
  if (world % layout.tp != 0 || world % layout.ep != 0 || layout.tp > world) {
    GTEST_SKIP() << layout.name() << " does not fold into " << world << " ranks";
  }
  const int dp = world / layout.tp;
  const RunResult& expected = oracle(layout.uneven, layout.v2);

  config::TridentConfig config = base_config(layout.uneven, layout.v2);
  config.mutable_parallel()->set_dp(dp);
  config.mutable_parallel()->set_tp(layout.tp);
  config.mutable_parallel()->set_ep(layout.ep);
  config.mutable_parallel()->set_a2a_chunks(layout.chunks);
  config.mutable_parallel()->set_zero1(layout.zero1);
  parallel::MeshSizes sizes;
  sizes.dp = dp;
  sizes.tp = layout.tp;
  sizes.ep = layout.ep;
  const parallel::Mesh mesh(sizes);
  auto tp_comm = std::make_shared<parallel::MpiBackend>(mesh.tp());
  auto dp_comm = std::make_shared<parallel::MpiBackend>(mesh.dp());
  TrainerOptions options;
  options.dp = dp_comm;
  options.tp = tp_comm;
  options.ep = std::make_shared<parallel::MpiBackend>(mesh.ep());
  options.edp = std::make_shared<parallel::MpiBackend>(mesh.edp());
  options.bucket_bytes = 4096;  // many buckets
  Trainer trainer(config, make_train_sampler(config), nullptr, options);
  ASSERT_EQ(trainer.tp_size(), layout.tp);
  ASSERT_EQ(trainer.ep_size(), layout.ep);
  ASSERT_NE(trainer.expert_bucket_plan(), nullptr);
  EXPECT_EQ(trainer.expert_bucket_plan()->dp_size, dp * layout.tp / layout.ep);

  bool clipped = false;
  double last_loss = 0.0;
  for (int64_t s = 0; s < kSteps; ++s) {
    const StepMetrics m = trainer.step();
    const StepMetrics& want = expected.steps[static_cast<size_t>(s)];
    EXPECT_LE(relative_difference(m.loss, want.loss), kTolerance) << "step " << m.step;
    EXPECT_LE(relative_difference(m.lm_loss, want.lm_loss), kTolerance) << "step " << m.step;
    EXPECT_LE(relative_difference(m.mtp_loss, want.mtp_loss), kTolerance) << "step " << m.step;
    EXPECT_LE(relative_difference(m.balance_loss, want.balance_loss), kTolerance)
        << "step " << m.step;
    EXPECT_LE(relative_difference(m.grad_norm, want.grad_norm), kTolerance) << "step " << m.step;
    EXPECT_EQ(m.tokens, want.tokens);
    EXPECT_EQ(m.target_tokens, want.target_tokens);
    EXPECT_EQ(m.layer_load_max_over_mean, want.layer_load_max_over_mean) << "step " << m.step;
    EXPECT_TRUE(same_on_every_rank(m.loss)) << "step " << m.step;
    EXPECT_TRUE(same_on_every_rank(m.grad_norm)) << "step " << m.step;
    last_loss = m.loss;
    clipped = clipped || m.grad_norm > config.train().grad_clip();
  }
  EXPECT_TRUE(clipped) << "the test should exercise gradient clipping";

  // Each token counted once: this rank's loads of the last step, summed over dp (not over TP:
  // every TP rank routes all of its dp index's tokens), are exactly one rank's.
  const std::vector<models::ExpertLoad>& loads = trainer.model().expert_loads();
  ASSERT_EQ(loads.size(), expected.last_loads.size());
  for (size_t l = 0; l < loads.size(); ++l) {
    std::vector<int64_t> summed = loads[l].tokens_per_expert;
    parallel::dp::sum_over_ranks(dp_comm.get(), summed);
    EXPECT_EQ(summed, expected.last_loads[l].tokens_per_expert) << "MoE layer " << l;
  }

  // Final weights: TP slices gathered to global shape, the rank's own experts by expert index.
  const models::ParameterStore& reference = expected.trainer->model().params();
  double diff2 = 0.0, norm2 = 0.0;
  int64_t experts_held = 0, experts_total = 0;
  for (const models::Parameter& param : trainer.model().params().parameters()) {
    const bool expert = param.spec->kind == models::ParamKind::kExpert;
    if (expert) ++experts_held;
    const Tensor global =
        expert ? param.value
               : parallel::testing::gather_parameter(*tp_comm, *param.spec, param.value);
    const Tensor& want = reference.get(param.spec->name).value;
    const float* a = global.data<float>();
    const float* b = want.data<float>();
    for (int64_t i = 0; i < want.numel(); ++i) {
      diff2 += (static_cast<double>(a[i]) - b[i]) * (static_cast<double>(a[i]) - b[i]);
      norm2 += static_cast<double>(b[i]) * b[i];
    }
  }
  for (const models::Parameter& param : reference.parameters()) {
    if (param.spec->kind == models::ParamKind::kExpert) ++experts_total;
  }
  EXPECT_EQ(experts_held * layout.ep, experts_total) << "each rank holds E / ep experts";
  const double error = std::sqrt(diff2 / norm2);
  EXPECT_LE(error, kTolerance) << "final weights of rank " << mesh.rank() << ", " << layout.name();
  const double worst = max_over_ranks(error);
  if (mesh.rank() == 0) {
    std::printf(
        "[ dp=%d tp=%d ep=%d chunks=%d %s%s%s ] final-weight relative error (worst rank) "
        "%.3g, last loss %.6f (one rank %.6f)\n",
        dp, layout.tp, layout.ep, layout.chunks, layout.zero1 ? "zero1" : "plain",
        layout.uneven ? " uneven" : "", layout.v2 ? " deepseek-v2" : "", worst, last_loss,
        expected.steps.back().loss);
  }
}

INSTANTIATE_TEST_SUITE_P(
    Layouts, ExpertTensorParallelTraining,
    ::testing::Values(
        // tp2·ep2: np 2 (dp 1) and np 4 (dp 2, edp 2).
        Layout{2, 2, 1, false, false}, Layout{2, 2, 3, false, false}, Layout{2, 2, 1, true, false},
        Layout{2, 2, 3, true, false}, Layout{2, 2, 2, true, true},
        // np 4 only.
        Layout{2, 4, 2, false, false}, Layout{2, 4, 1, true, false}, Layout{4, 2, 2, true, false},
        Layout{4, 4, 1, false, false}, Layout{4, 2, 3, false, true},
        // np 8 only: dp4·tp2·ep8 (edp 1).
        Layout{2, 8, 2, true, false},
        // DeepSeek-V2: np 2 and 4, then np 4 only.
        Layout{2, 2, 2, true, false, true}, Layout{2, 4, 1, false, false, true},
        Layout{4, 2, 3, true, true, true}),
    [](const ::testing::TestParamInfo<Layout>& param_info) { return param_info.param.name(); });

// What the trainer still refuses, with the field named, before it trains anything.
TEST(ExpertTensorParallelTraining, RefusesExpertTensorParallelism) {
  if (world_size() < 2) GTEST_SKIP() << "needs at least 2 ranks";
  config::TridentConfig config = base_config(false);
  config.mutable_parallel()->set_tp(world_size());
  config.mutable_parallel()->set_ep(world_size());
  config.mutable_parallel()->set_etp(2);
  parallel::MeshSizes sizes;
  sizes.tp = world_size();
  sizes.ep = world_size();
  const parallel::Mesh mesh(sizes);
  TrainerOptions options;
  options.dp = std::make_shared<parallel::MpiBackend>(mesh.dp());
  options.tp = std::make_shared<parallel::MpiBackend>(mesh.tp());
  options.ep = std::make_shared<parallel::MpiBackend>(mesh.ep());
  options.edp = std::make_shared<parallel::MpiBackend>(mesh.edp());
  try {
    Trainer trainer(config, make_train_sampler(config), nullptr, options);
    ADD_FAILURE() << "parallel.etp = 2 was accepted";
  } catch (const UserError& error) {
    EXPECT_NE(std::string(error.what()).find("parallel.etp"), std::string::npos) << error.what();
  }
}

}  // namespace
}  // namespace trident::train
