// Data × tensor parallel training must match one rank: for every way of folding the job's
// ranks into dp × tp (dp·tp = world size), with ZeRO-1 on and off, 20 steps of the tiny model
// give the one-rank losses and gradient norms (relative 1e-5) and, gathered over TP to their
// global shapes, the one-rank final weights (relative 1e-5). Every rank reports the same
// metrics, and the ranks of a dp group hold bit-identical slices.
//
// AdamW runs with eps 1e-6 and lr 1e-3 here: with eps 1e-8 an element whose gradient sits at
// the fp32 round-off floor (|g| ≲ 1e-8) takes an O(lr) step of arbitrary sign under any change
// of summation order (TP splits the matmul reductions), which after a few steps flips routing
// decisions; the larger eps keeps the comparison about the layout rather than that noise.
#include <gtest/gtest.h>
#include <mpi.h>

#include <cmath>
#include <cstdio>
#include <memory>
#include <ostream>
#include <string>
#include <vector>

#include "parallel/comm/mpi_backend.h"
#include "parallel/mesh.h"
#include "runtime/config/config.h"
#include "runtime/train/data_setup.h"
#include "runtime/train/trainer.h"
#include "tests/parallel/test_helpers.h"
#include "tests/tp/tp_test_util.h"

namespace trident::train {
namespace {

using parallel::testing::relative_difference;
using parallel::testing::same_on_every_rank;
using parallel::testing::world_size;

constexpr int64_t kSteps = 20;
constexpr double kTolerance = 1e-5;

// 16 rows in micro-batches of 2, clipping that bites, balance loss and bias update on.
config::TridentConfig base_config() {
  config::TridentConfig config = config::load_config(config::resolve_config_path("tiny"));
  config::apply_overrides(config, {"train.steps=20", "train.global_batch=16", "train.micro_batch=2",
                                   "train.grad_clip=0.5", "train.aux_loss_alpha=0.001",
                                   "train.bias_update_speed=0.001", "train.mtp_loss_weight=0.3",
                                   "train.adam_eps=1e-6", "train.lr=1e-3", "train.min_lr=1e-4"});
  return config;
}

struct RunResult {
  std::vector<StepMetrics> steps;
  std::unique_ptr<Trainer> trainer;
};

const RunResult& oracle() {
  static const RunResult result = [] {
    config::TridentConfig config = base_config();
    RunResult run;
    run.trainer = std::make_unique<Trainer>(config, make_train_sampler(config));
    for (int64_t s = 0; s < kSteps; ++s) run.steps.push_back(run.trainer->step());
    return run;
  }();
  return result;
}

struct Layout {
  int tp = 1;
  bool zero1 = false;
  std::string name() const { return "tp" + std::to_string(tp) + (zero1 ? "Zero1" : "Plain"); }
};

void PrintTo(const Layout& layout, std::ostream* out) { *out << layout.name(); }

class MeshTraining : public ::testing::TestWithParam<Layout> {};

TEST_P(MeshTraining, MatchesOneRank) {
  const Layout layout = GetParam();
  const int world = world_size();
  if (world % layout.tp != 0) GTEST_SKIP() << "tp " << layout.tp << " does not divide " << world;
  const int dp = world / layout.tp;
  const RunResult& expected = oracle();

  config::TridentConfig config = base_config();
  config.mutable_parallel()->set_dp(dp);
  config.mutable_parallel()->set_tp(layout.tp);
  config.mutable_parallel()->set_zero1(layout.zero1);
  parallel::MeshSizes sizes;
  sizes.dp = dp;
  sizes.tp = layout.tp;
  const parallel::Mesh mesh(sizes);
  auto dp_comm = std::make_shared<parallel::MpiBackend>(mesh.dp());
  auto tp_comm = std::make_shared<parallel::MpiBackend>(mesh.tp());
  TrainerOptions options;
  options.dp = dp_comm;
  options.tp = layout.tp > 1 ? tp_comm : nullptr;
  options.bucket_bytes = 4096;  // many buckets, one of them ragged
  Trainer trainer(config, make_train_sampler(config), nullptr, options);
  ASSERT_EQ(trainer.dp_size(), dp);
  ASSERT_EQ(trainer.tp_size(), layout.tp);

  bool clipped = false;
  double last_loss = 0.0;
  for (int64_t s = 0; s < kSteps; ++s) {
    const StepMetrics m = trainer.step();
    const StepMetrics& want = expected.steps[static_cast<size_t>(s)];
    EXPECT_LE(relative_difference(m.loss, want.loss), kTolerance) << "step " << m.step;
    EXPECT_LE(relative_difference(m.lm_loss, want.lm_loss), kTolerance) << "step " << m.step;
    EXPECT_LE(relative_difference(m.mtp_loss, want.mtp_loss), kTolerance) << "step " << m.step;
    EXPECT_LE(relative_difference(m.balance_loss, want.balance_loss), kTolerance) << "step " << m.step;
    EXPECT_LE(relative_difference(m.grad_norm, want.grad_norm), kTolerance) << "step " << m.step;
    EXPECT_EQ(m.tokens, want.tokens);
    EXPECT_EQ(m.target_tokens, want.target_tokens);
    EXPECT_EQ(m.expert_load_max_over_mean, want.expert_load_max_over_mean) << "step " << m.step;
    EXPECT_TRUE(same_on_every_rank(m.loss)) << "step " << m.step;
    EXPECT_TRUE(same_on_every_rank(m.grad_norm)) << "step " << m.step;
    EXPECT_TRUE(same_on_every_rank(m.expert_load_max_over_mean)) << "step " << m.step;
    last_loss = m.loss;
    clipped = clipped || m.grad_norm > config.train().grad_clip();
  }
  EXPECT_TRUE(clipped) << "the test should exercise gradient clipping";

  // Final weights, gathered over TP to global shape, against the one-rank model's.
  const models::ParameterStore& reference = expected.trainer->model().params();
  double diff2 = 0.0, norm2 = 0.0;
  for (const models::Parameter& param : trainer.model().params().parameters()) {
    const Tensor global =
        layout.tp > 1 ? parallel::testing::gather_parameter(*tp_comm, *param.spec, param.value)
                      : param.value;
    const Tensor& want = reference.get(param.spec->name).value;
    const float* a = global.data<float>();
    const float* b = want.data<float>();
    for (int64_t i = 0; i < want.numel(); ++i) {
      diff2 += (static_cast<double>(a[i]) - b[i]) * (static_cast<double>(a[i]) - b[i]);
      norm2 += static_cast<double>(b[i]) * b[i];
    }
  }
  const double error = std::sqrt(diff2 / norm2);
  EXPECT_LE(error, kTolerance) << "final weights, " << layout.name() << " dp " << dp;
  // The dp ranks of one TP index hold the same slices bit for bit.
  EXPECT_EQ(
      parallel::testing::max_difference_to_rank0(*dp_comm, trainer.model().params().flat_values()),
      0.0);
  if (mesh.rank() == 0) {
    std::printf(
        "[ dp=%d tp=%d %s ] final-weight relative error %.3g, last loss %.6f (one rank "
        "%.6f)\n",
        dp, layout.tp, layout.zero1 ? "zero1" : "plain", error, last_loss,
        expected.steps.back().loss);
  }
}

INSTANTIATE_TEST_SUITE_P(Layouts, MeshTraining,
                         ::testing::Values(Layout{1, false}, Layout{1, true}, Layout{2, false},
                                           Layout{2, true}, Layout{4, false}, Layout{4, true}),
                         [](const ::testing::TestParamInfo<Layout>& param_info) {
                           return param_info.param.name();
                         });

// Expert parallelism in the trainer: the job's ranks are the dp group and, refolded, ep ranks
// holding E / ep routed experts each (edp = dp / ep ranks hold the same experts). Dense
// gradients are reduced over dp, the experts' over edp; the all-to-alls run in two chunks
// overlapped with compute. Every rank's parameters (its experts and the dense ones) must match
// the one-rank model's after 20 steps, and the metrics must match and agree on every rank.
struct EpLayout {
  int ep = 2;
  bool zero1 = false;
  std::string name() const { return "ep" + std::to_string(ep) + (zero1 ? "Zero1" : "Plain"); }
};

void PrintTo(const EpLayout& layout, std::ostream* out) { *out << layout.name(); }

class ExpertParallelTraining : public ::testing::TestWithParam<EpLayout> {};

TEST_P(ExpertParallelTraining, MatchesOneRank) {
  const EpLayout layout = GetParam();
  const int world = world_size();
  if (world % layout.ep != 0) GTEST_SKIP() << "ep " << layout.ep << " does not divide " << world;
  const RunResult& expected = oracle();

  config::TridentConfig config = base_config();
  config.mutable_parallel()->set_dp(world);
  config.mutable_parallel()->set_ep(layout.ep);
  config.mutable_parallel()->set_a2a_chunks(2);
  config.mutable_parallel()->set_zero1(layout.zero1);
  parallel::MeshSizes sizes;
  sizes.dp = world;
  sizes.ep = layout.ep;
  const parallel::Mesh mesh(sizes);
  TrainerOptions options;
  options.dp = std::make_shared<parallel::MpiBackend>(mesh.dp());
  options.ep = std::make_shared<parallel::MpiBackend>(mesh.ep());
  options.edp = std::make_shared<parallel::MpiBackend>(mesh.edp());
  options.bucket_bytes = 4096;
  Trainer trainer(config, make_train_sampler(config), nullptr, options);
  ASSERT_EQ(trainer.ep_size(), layout.ep);
  ASSERT_NE(trainer.expert_bucket_plan(), nullptr);
  EXPECT_EQ(trainer.expert_bucket_plan()->dp_size, world / layout.ep);

  bool clipped = false;
  for (int64_t s = 0; s < kSteps; ++s) {
    const StepMetrics m = trainer.step();
    const StepMetrics& want = expected.steps[static_cast<size_t>(s)];
    EXPECT_LE(relative_difference(m.loss, want.loss), kTolerance) << "step " << m.step;
    EXPECT_LE(relative_difference(m.lm_loss, want.lm_loss), kTolerance) << "step " << m.step;
    EXPECT_LE(relative_difference(m.mtp_loss, want.mtp_loss), kTolerance) << "step " << m.step;
    EXPECT_LE(relative_difference(m.balance_loss, want.balance_loss), kTolerance) << "step " << m.step;
    EXPECT_LE(relative_difference(m.grad_norm, want.grad_norm), kTolerance) << "step " << m.step;
    EXPECT_EQ(m.tokens, want.tokens);
    EXPECT_EQ(m.expert_load_max_over_mean, want.expert_load_max_over_mean) << "step " << m.step;
    EXPECT_TRUE(same_on_every_rank(m.loss)) << "step " << m.step;
    EXPECT_TRUE(same_on_every_rank(m.grad_norm)) << "step " << m.step;
    clipped = clipped || m.grad_norm > config.train().grad_clip();
  }
  EXPECT_TRUE(clipped) << "the test should exercise gradient clipping";

  const models::ParameterStore& reference = expected.trainer->model().params();
  double diff2 = 0.0, norm2 = 0.0;
  int64_t experts_held = 0;
  for (const models::Parameter& param : trainer.model().params().parameters()) {
    if (param.spec->kind == models::ParamKind::kExpert) ++experts_held;
    const Tensor& want = reference.get(param.spec->name).value;
    const float* a = param.value.data<float>();
    const float* b = want.data<float>();
    for (int64_t i = 0; i < want.numel(); ++i) {
      diff2 += (static_cast<double>(a[i]) - b[i]) * (static_cast<double>(a[i]) - b[i]);
      norm2 += static_cast<double>(b[i]) * b[i];
    }
  }
  int64_t experts_total = 0;
  for (const models::Parameter& param : reference.parameters()) {
    if (param.spec->kind == models::ParamKind::kExpert) ++experts_total;
  }
  EXPECT_EQ(experts_held * layout.ep, experts_total) << "each rank holds E / ep experts";
  const double error = std::sqrt(diff2 / norm2);
  EXPECT_LE(error, kTolerance) << "final weights of rank " << mesh.rank() << ", " << layout.name();
  if (mesh.rank() == 0) {
    std::printf("[ dp=%d ep=%d %s ] final-weight relative error (rank 0's parameters) %.3g\n",
                world, layout.ep, layout.zero1 ? "zero1" : "plain", error);
  }
}

INSTANTIATE_TEST_SUITE_P(Layouts, ExpertParallelTraining,
                         ::testing::Values(EpLayout{2, false}, EpLayout{2, true},
                                           EpLayout{4, false}, EpLayout{4, true}),
                         [](const ::testing::TestParamInfo<EpLayout>& param_info) {
                           return param_info.param.name();
                         });

}  // namespace
}  // namespace trident::train
