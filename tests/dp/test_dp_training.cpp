// Data-parallel training (with and without ZeRO-1, many buckets or one) must match one rank:
// 20 steps of the tiny model, losses and final weights within a relative 1e-5, and every rank
// must end with the same weights and report the same metrics. Runs under mpirun with 1, 2 or
// 4 ranks; each rank also runs the single-rank trainer itself as the oracle.
#include <gtest/gtest.h>
#include <mpi.h>

#include <cmath>
#include <cstring>
#include <memory>
#include <ostream>
#include <string>
#include <vector>

#include "parallel/comm/mpi_backend.h"
#include "parallel/mesh.h"
#include "runtime/config/config.h"
#include "runtime/core/allocator.h"
#include "runtime/train/data_setup.h"
#include "runtime/train/trainer.h"
#include "tests/parallel/test_helpers.h"

namespace trident::train {
namespace {

using parallel::testing::relative_difference;
using parallel::testing::same_on_every_rank;
using parallel::testing::world_size;

constexpr int64_t kSteps = 20;
constexpr double kTolerance = 1e-5;

// The tiny model with a global batch of 16 rows in micro-batches of 2 (8 micro-batches on
// one rank, 4 per rank at dp 2, 2 at dp 4), clipping that bites, the balance loss and the
// router-bias update on.
config::TridentConfig base_config() {
  config::TridentConfig config = config::load_config(config::resolve_config_path("tiny"));
  config::apply_overrides(config, {"train.steps=20", "train.global_batch=16", "train.micro_batch=2",
                                   "train.grad_clip=0.5", "train.aux_loss_alpha=0.001",
                                   "train.bias_update_speed=0.001", "train.mtp_loss_weight=0.3"});
  return config;
}

struct RunResult {
  std::vector<StepMetrics> steps;
  Tensor values;  // final flat weights
};

// The single-rank oracle, computed once per process.
const RunResult& oracle() {
  static const RunResult result = [] {
    config::TridentConfig config = base_config();
    config.mutable_parallel()->set_dp(1);
    config.mutable_parallel()->set_zero1(false);
    Trainer trainer(config, make_train_sampler(config));
    RunResult run;
    for (int64_t s = 0; s < kSteps; ++s) run.steps.push_back(trainer.step());
    run.values = trainer.model().params().flat_values().clone();
    return run;
  }();
  return result;
}

// Every rank holds the same bytes: the element-wise max and min over ranks equal the local
// values exactly.
bool identical_on_every_rank(const Tensor& values) {
  const auto n = static_cast<int>(values.numel());
  std::vector<float> hi(static_cast<size_t>(n)), lo(static_cast<size_t>(n));
  MPI_Allreduce(values.data<float>(), hi.data(), n, MPI_FLOAT, MPI_MAX, MPI_COMM_WORLD);
  MPI_Allreduce(values.data<float>(), lo.data(), n, MPI_FLOAT, MPI_MIN, MPI_COMM_WORLD);
  return std::memcmp(hi.data(), values.data<float>(), values.nbytes()) == 0 &&
         std::memcmp(lo.data(), values.data<float>(), values.nbytes()) == 0;
}

struct Layout {
  bool zero1 = false;
  int64_t bucket_bytes = 0;  // 0: parallel.dp_bucket_mb (one bucket for the tiny model)
  std::string name() const {
    return std::string(zero1 ? "Zero1" : "Plain") +
           (bucket_bytes > 0 ? "SmallBuckets" : "OneBucket");
  }
};

void PrintTo(const Layout& layout, std::ostream* out) { *out << layout.name(); }

class DataParallelTraining : public ::testing::TestWithParam<Layout> {};

TEST_P(DataParallelTraining, MatchesOneRank) {
  const Layout layout = GetParam();
  const RunResult& expected = oracle();
  const int dp = world_size();

  config::TridentConfig config = base_config();
  config.mutable_parallel()->set_dp(dp);
  config.mutable_parallel()->set_zero1(layout.zero1);
  parallel::MeshSizes sizes;
  sizes.dp = dp;
  const parallel::Mesh mesh(sizes);
  TrainerOptions options;
  options.dp = std::make_shared<parallel::MpiBackend>(mesh.dp());
  options.bucket_bytes = layout.bucket_bytes;
  Trainer trainer(config, make_train_sampler(config), nullptr, options);
  ASSERT_EQ(trainer.dp_size(), dp);
  ASSERT_EQ(trainer.zero1(), layout.zero1);
  const int64_t buckets = static_cast<int64_t>(trainer.bucket_plan().buckets.size());
  if (layout.bucket_bytes > 0) {
    EXPECT_GT(buckets, 10) << "small buckets should cut the tiny model into many";
  } else {
    EXPECT_EQ(buckets, 1);
  }

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
    EXPECT_EQ(m.grad_buckets, buckets);
    // Every bucket but those holding the embedding is posted while backward still runs.
    if (buckets > 1) {
      EXPECT_GT(m.grad_buckets_overlapped, buckets / 2) << "step " << m.step;
    }
    last_loss = m.loss;
    clipped = clipped || m.grad_norm > config.train().grad_clip();
  }
  EXPECT_TRUE(clipped) << "the test should exercise gradient clipping";
  const Tensor& values = trainer.model().params().flat_values();
  const double error = relative_error(values, expected.values);
  EXPECT_LE(error, kTolerance) << "final weights, dp " << dp << " " << layout.name();
  EXPECT_TRUE(identical_on_every_rank(values));
  if (mesh.rank() == 0) {
    std::printf(
        "[ dp=%d %s ] %lld buckets, final-weight relative error %.3g, last loss %.6f "
        "(one rank %.6f)\n",
        dp, layout.name().c_str(), static_cast<long long>(buckets), error, last_loss,
        expected.steps.back().loss);
  }
}

INSTANTIATE_TEST_SUITE_P(Layouts, DataParallelTraining,
                         ::testing::Values(Layout{false, 0}, Layout{false, 4096}, Layout{true, 0},
                                           Layout{true, 4096}),
                         [](const ::testing::TestParamInfo<Layout>& param_info) {
                           return param_info.param.name();
                         });

// ZeRO-1 keeps master weights and both moments for 1/dp of the elements: the trainer's
// optimizer state, counted by the allocator, is 12 bytes per shard element, and shrinks by dp
// against the replicated moments (8 bytes per element).
TEST(DataParallelMemory, Zero1OptimizerStateShrinksByDp) {
  const int dp = world_size();
  parallel::MeshSizes sizes;
  sizes.dp = dp;
  const parallel::Mesh mesh(sizes);
  auto comm = std::make_shared<parallel::MpiBackend>(mesh.dp());
  Allocator& allocator = Allocator::instance(Device::CPU);

  auto construct = [&](bool zero1) {
    config::TridentConfig config = base_config();
    config.mutable_parallel()->set_dp(dp);
    config.mutable_parallel()->set_zero1(zero1);
    TrainerOptions options;
    options.dp = comm;
    options.bucket_bytes = 4096;
    const int64_t before = allocator.stats().current_bytes;
    auto trainer = std::make_unique<Trainer>(config, make_train_sampler(config), nullptr, options);
    const int64_t allocated = allocator.stats().current_bytes - before;
    return std::make_pair(std::move(trainer), allocated);
  };
  auto [plain, plain_bytes] = construct(false);
  auto [sharded, sharded_bytes] = construct(true);
  const int64_t n = plain->model().params().numel();
  const int64_t shard = sharded->bucket_plan().shard_numel;
  const int64_t buckets = static_cast<int64_t>(sharded->bucket_plan().buckets.size());
  EXPECT_EQ(plain->optimizer_state_bytes(), 8 * n);
  EXPECT_EQ(sharded->optimizer_state_bytes(), 12 * shard);
  EXPECT_LE(shard * dp, n + buckets * (dp - 1));
  // Same model in both, so the difference in what the allocator counted is the optimizer
  // state, plus under ZeRO-1 the reduced-gradient shard and the zero-padded copy of the one
  // ragged bucket.
  int64_t padding_copies = 0;
  for (const parallel::dp::GradBucket& b : sharded->bucket_plan().buckets) {
    if (b.needs_padding()) padding_copies += b.padded;
  }
  EXPECT_EQ(sharded_bytes - plain_bytes, 12 * shard + 4 * shard + 4 * padding_copies - 8 * n);
  if (mesh.rank() == 0) {
    std::printf("[ dp=%d ] optimizer state per rank: %lld B replicated, %lld B with ZeRO-1\n", dp,
                static_cast<long long>(8 * n), static_cast<long long>(12 * shard));
  }
}

}  // namespace
}  // namespace trident::train
