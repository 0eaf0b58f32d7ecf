// Pipeline-parallel training must match one rank: for every schedule at pp 2 and pp 4, and
// pp 2 combined with dp 2, tp 2 or ep 2 (two schedules each), 20 steps of the tiny model with
// 8 decoder layers (so every virtual stage holds at least one layer) give the one-rank losses
// and gradient norms (relative 1e-5) and the one-rank final weights of every parameter the
// rank holds (relative 1e-5). Micro-batch counts per step are both multiples of pp and not.
// Every rank reports the same metrics, and a rank allocates only its stages' parameters.
//
// AdamW runs with eps 1e-6 and lr 1e-3, as in tests/dp/test_mesh_training.cpp: with eps 1e-8
// an element whose gradient sits at the fp32 round-off floor takes an O(lr) step of arbitrary
// sign under any change of summation order, which soon flips routing decisions.
//
// Where the last stage keeps a copy of the embedding for MTP, that copy must equal stage 0's
// embedding bit for bit after every step (two copies of one weight are one weight), checked by
// a point-to-point comparison between the two ranks of each pipeline, also under ZeRO-1 with
// dp 3 and dp 4 reduced over a ring (the ranks shard the two copies at other bucket offsets,
// so a ring would add their gradients in other orders).
//
// The binary runs under mpirun with 2, 4, 6 or 8 ranks; each layout runs where its rank count
// (pp · dp · tp) equals the world size and is skipped elsewhere.
#include <gtest/gtest.h>
#include <mpi.h>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <map>
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
#include "tests/pp/ring_reduction.h"
#include "tests/tp/tp_test_util.h"

namespace trident::train {
namespace {

using parallel::testing::relative_difference;
using parallel::testing::same_on_every_rank;
using parallel::testing::world_size;

constexpr int64_t kSteps = 20;
constexpr double kTolerance = 1e-5;

config::TridentConfig base_config(int64_t global_batch) {
  config::TridentConfig config = config::load_config(config::resolve_config_path("tiny"));
  config::apply_overrides(
      config, {"model.num_hidden_layers=8", "train.steps=20",
               "train.global_batch=" + std::to_string(global_batch), "train.micro_batch=2",
               "train.grad_clip=0.5", "train.aux_loss_alpha=0.001",
               "train.bias_update_speed=0.001", "train.mtp_loss_weight=0.3",
               "train.adam_eps=1e-6", "train.lr=1e-3", "train.min_lr=1e-4"});
  return config;
}

struct RunResult {
  std::vector<StepMetrics> steps;
  std::unique_ptr<Trainer> trainer;
};

// The one-rank run of a global batch size (computed once per process and size).
const RunResult& oracle(int64_t global_batch) {
  static std::map<int64_t, RunResult> runs;
  auto it = runs.find(global_batch);
  if (it != runs.end()) return it->second;
  config::TridentConfig config = base_config(global_batch);
  RunResult run;
  run.trainer = std::make_unique<Trainer>(config, make_train_sampler(config));
  for (int64_t s = 0; s < kSteps; ++s) run.steps.push_back(run.trainer->step());
  return runs.emplace(global_batch, std::move(run)).first->second;
}

struct Layout {
  int pp = 2;
  std::string schedule = "1f1b";
  int virtual_stages = 0;
  int dp = 1;
  int tp = 1;
  int ep = 1;
  int64_t global_batch = 16;  // micro-batches per step: global_batch / (2 · dp)
  bool zero1 = false;
  // Reduce over dp with RingReduction (tests/pp/ring_reduction.h): the summation order then
  // depends on where an element sits in its bucket, as with NCCL.
  bool ring = false;

  int ranks() const { return pp * dp * tp; }
  int64_t microbatches() const { return global_batch / (2 * dp); }
  std::string name() const {
    std::string out = "pp" + std::to_string(pp) + "_";
    for (const char c : schedule) out += c == '-' ? '_' : c;
    if (dp > 1 && ep == 1) out += "_dp" + std::to_string(dp);
    if (tp > 1) out += "_tp" + std::to_string(tp);
    if (ep > 1) out += "_ep" + std::to_string(ep);
    if (zero1) out += "_zero1";
    if (ring) out += "_ring";
    return out + "_m" + std::to_string(microbatches());
  }
};

void PrintTo(const Layout& layout, std::ostream* out) { *out << layout.name(); }

// How far the last stage's embedding copy is from stage 0's embedding: the count of elements
// whose bits differ and the largest absolute difference, the same on every rank (zero where no
// copy exists). The last stage's rank sends its copy to stage 0's rank of the same pipeline
// (same dp, tp and ep coordinates), which compares.
struct CopyDrift {
  double differing = 0.0;
  double max_abs = 0.0;
};

CopyDrift embedding_copy_drift(const Trainer& trainer, parallel::Communicator& pp) {
  constexpr int kTag = 32711;
  const char* const kEmbedding = "model.embed_tokens.weight";
  const PipelinePartition& partition = *trainer.pipeline_partition();
  CopyDrift local;
  if (partition.embedding_copy(trainer.model().mtp_depth())) {
    const Tensor* held = trainer.model().params().has(kEmbedding)
                             ? &trainer.model().params().get(kEmbedding).value
                             : nullptr;
    if (pp.rank() == partition.last_rank()) {
      pp.send(*held, partition.first_rank(), kTag)->wait();
    } else if (pp.rank() == partition.first_rank()) {
      const Tensor copy = Tensor::empty(held->shape());
      pp.recv(copy, partition.last_rank(), kTag)->wait();
      const float* a = held->data<float>();
      const float* b = copy.data<float>();
      for (int64_t i = 0; i < held->numel(); ++i) {
        if (std::memcmp(a + i, b + i, sizeof(float)) != 0) local.differing += 1.0;
        local.max_abs = std::max(local.max_abs, std::abs(static_cast<double>(a[i]) - b[i]));
      }
    }
  }
  CopyDrift global;
  MPI_Allreduce(&local.differing, &global.differing, 1, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD);
  MPI_Allreduce(&local.max_abs, &global.max_abs, 1, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
  return global;
}

class PipelineTraining : public ::testing::TestWithParam<Layout> {};

TEST_P(PipelineTraining, MatchesOneRank) {
  const Layout layout = GetParam();
  if (world_size() != layout.ranks()) {
    GTEST_SKIP() << layout.name() << " runs on " << layout.ranks() << " ranks";
  }
  const RunResult& expected = oracle(layout.global_batch);

  config::TridentConfig config = base_config(layout.global_batch);
  config::ParallelConfig& par = *config.mutable_parallel();
  par.set_pp(layout.pp);
  par.set_schedule(layout.schedule);
  par.set_virtual_stages(layout.virtual_stages);
  par.set_dp(layout.dp);
  par.set_tp(layout.tp);
  par.set_ep(layout.ep);
  par.set_zero1(layout.zero1);
  parallel::MeshSizes sizes;
  sizes.pp = layout.pp;
  sizes.dp = layout.dp;
  sizes.tp = layout.tp;
  sizes.ep = layout.ep;
  const parallel::Mesh mesh(sizes);
  auto pp_comm = std::make_shared<parallel::MpiBackend>(mesh.pp());
  auto tp_comm = std::make_shared<parallel::MpiBackend>(mesh.tp());
  TrainerOptions options;
  options.pp = pp_comm;
  auto dp_comm = std::make_shared<parallel::MpiBackend>(mesh.dp());
  options.dp = dp_comm;
  if (layout.ring) options.dp = std::make_shared<parallel::testing::RingReduction>(dp_comm);
  options.tp = layout.tp > 1 ? tp_comm : nullptr;
  if (layout.ep > 1) {
    options.ep = std::make_shared<parallel::MpiBackend>(mesh.ep());
    options.edp = std::make_shared<parallel::MpiBackend>(mesh.edp());
  }
  options.bucket_bytes = 4096;
  Trainer trainer(config, make_train_sampler(config), nullptr, options);
  ASSERT_EQ(trainer.pp_size(), layout.pp);
  ASSERT_NE(trainer.pipeline_partition(), nullptr);

  // Only this rank's stages are allocated: every decoder layer held is one of its stages'.
  const PipelinePartition& partition = *trainer.pipeline_partition();
  const models::PipelineHolding& holding = trainer.model().holding();
  for (const models::Parameter& param : trainer.model().params().parameters()) {
    EXPECT_TRUE(holding.holds(*param.spec)) << param.spec->name;
  }
  int layers_held = 0;
  for (int s = 0; s < partition.layout.num_stages(); ++s) {
    const StageRange& range = partition.stages[static_cast<size_t>(s)];
    EXPECT_GE(range.num_layers(), 1) << "stage " << s;
    for (int64_t l = range.first_layer; l < range.last_layer; ++l) {
      EXPECT_EQ(holding.holds_layer(l), partition.layout.rank_of(s) == pp_comm->rank());
      layers_held += holding.holds_layer(l) ? 1 : 0;
    }
  }
  EXPECT_LT(layers_held, trainer.model().num_layers());

  bool clipped = false;
  CopyDrift worst;
  for (int64_t s = 0; s < kSteps; ++s) {
    const StepMetrics m = trainer.step();
    const CopyDrift drift = embedding_copy_drift(trainer, *pp_comm);
    EXPECT_EQ(drift.differing, 0.0) << "step " << m.step << ": the embedding copy differs from "
                                    << "stage 0's by up to " << drift.max_abs;
    worst.differing = std::max(worst.differing, drift.differing);
    worst.max_abs = std::max(worst.max_abs, drift.max_abs);
    const StepMetrics& want = expected.steps[static_cast<size_t>(s)];
    EXPECT_LE(relative_difference(m.loss, want.loss), kTolerance) << "step " << m.step;
    EXPECT_LE(relative_difference(m.lm_loss, want.lm_loss), kTolerance) << "step " << m.step;
    EXPECT_LE(relative_difference(m.mtp_loss, want.mtp_loss), kTolerance) << "step " << m.step;
    EXPECT_LE(relative_difference(m.balance_loss, want.balance_loss), kTolerance)
        << "step " << m.step;
    EXPECT_LE(relative_difference(m.grad_norm, want.grad_norm), kTolerance) << "step " << m.step;
    EXPECT_EQ(m.tokens, want.tokens);
    EXPECT_EQ(m.target_tokens, want.target_tokens);
    EXPECT_EQ(m.expert_load_max_over_mean, want.expert_load_max_over_mean) << "step " << m.step;
    EXPECT_TRUE(same_on_every_rank(m.loss)) << "step " << m.step;
    EXPECT_TRUE(same_on_every_rank(m.grad_norm)) << "step " << m.step;
    EXPECT_TRUE(same_on_every_rank(m.expert_load_max_over_mean)) << "step " << m.step;
    clipped = clipped || m.grad_norm > config.train().grad_clip();
  }
  EXPECT_TRUE(clipped) << "the test should exercise gradient clipping";

  // Final weights of every parameter this rank holds, gathered over TP to their global shapes.
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
  EXPECT_LE(error, kTolerance) << "final weights of rank " << mesh.rank() << ", " << layout.name();
  if (mesh.rank() == 0) {
    std::printf("[ %s ] final-weight relative error (rank 0's parameters) %.3g; embedding copy: "
                "at most %.0f elements differ, by up to %.3g\n",
                layout.name().c_str(), error, worst.differing, worst.max_abs);
  }
}

// pp alone with every schedule at pp 2 and pp 4, then every schedule at pp 2 (4 ranks) and
// pp 4 (8 ranks) with each of dp 2, tp 2 and ep 2, ZeRO-1 at pp 2 × dp 2, dp 3 (6 ranks) and
// dp 4 (8 ranks), and plain dp 3; the dp 3 and dp 4 layouts reduce over a ring, whose order
// depends on an element's place in its bucket (which differs between the embedding's two
// copies). The micro-batch counts alternate between multiples of pp and not
// (DualPipeV needs at least 2·pp).
std::vector<Layout> layouts() {
  return {
      Layout{2, "1f1b", 0, 1, 1, 1, 14},        Layout{2, "interleaved", 2, 1, 1, 1, 16},
      Layout{2, "zb-h1", 0, 1, 1, 1, 10},       Layout{2, "dualpipev", 0, 1, 1, 1, 16},
      Layout{4, "1f1b", 0, 1, 1, 1, 16},        Layout{4, "interleaved", 2, 1, 1, 1, 12},
      Layout{4, "zb-h1", 0, 1, 1, 1, 14},       Layout{4, "dualpipev", 0, 1, 1, 1, 18},
      Layout{2, "1f1b", 0, 2, 1, 1, 12},        Layout{2, "dualpipev", 0, 2, 1, 1, 16},
      Layout{2, "interleaved", 2, 1, 2, 1, 14}, Layout{2, "zb-h1", 0, 1, 2, 1, 16},
      Layout{2, "zb-h1", 0, 2, 1, 2, 12},       Layout{2, "dualpipev", 0, 2, 1, 2, 20},
      Layout{4, "zb-h1", 0, 2, 1, 1, 12},
      // Every schedule with each of dp 2, tp 2 and ep 2 (ep over the stage's dp 2), at pp 2
      // (4 ranks) and pp 4 (8 ranks), besides the ones above.
      Layout{2, "interleaved", 2, 2, 1, 1, 12}, Layout{2, "zb-h1", 0, 2, 1, 1, 16},
      Layout{2, "1f1b", 0, 1, 2, 1, 10},        Layout{2, "dualpipev", 0, 1, 2, 1, 18},
      Layout{2, "1f1b", 0, 2, 1, 2, 16},        Layout{2, "interleaved", 2, 2, 1, 2, 20},
      Layout{4, "1f1b", 0, 2, 1, 1, 20},        Layout{4, "interleaved", 2, 2, 1, 1, 16},
      Layout{4, "dualpipev", 0, 2, 1, 1, 36},
      Layout{4, "1f1b", 0, 1, 2, 1, 16},        Layout{4, "interleaved", 2, 1, 2, 1, 10},
      Layout{4, "zb-h1", 0, 1, 2, 1, 12},       Layout{4, "dualpipev", 0, 1, 2, 1, 16},
      Layout{4, "1f1b", 0, 2, 1, 2, 12},        Layout{4, "interleaved", 2, 2, 1, 2, 16},
      Layout{4, "zb-h1", 0, 2, 1, 2, 20},       Layout{4, "dualpipev", 0, 2, 1, 2, 32},
      Layout{2, "1f1b", 0, 2, 1, 1, 12, true},
      Layout{2, "1f1b", 0, 3, 1, 1, 12, true, true},
      Layout{2, "zb-h1", 0, 3, 1, 1, 18, false, true},
      Layout{2, "1f1b", 0, 4, 1, 1, 16, true, true},
  };
}

INSTANTIATE_TEST_SUITE_P(Layouts, PipelineTraining, ::testing::ValuesIn(layouts()),
                         [](const ::testing::TestParamInfo<Layout>& param_info) {
                           return param_info.param.name();
                         });

}  // namespace
}  // namespace trident::train
