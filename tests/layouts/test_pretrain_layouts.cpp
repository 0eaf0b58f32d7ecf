// The one invariant for pretraining: every layout computes what one rank computes. For every
// layout of the tiny model on the job's ranks (tests/support/layout.h: pp ∈ {1, 2} with each of
// the four schedules at pp = 2, every fold of dp × tp, every ep dividing dp · tp, ZeRO-1 off and
// on), 10 steps with gradient clipping active give
//   - one rank's loss (and its LM, MTP and balance parts) and gradient norm within 1e-6
//     relative at every step, and the same metrics on every rank;
//   - one rank's final weights within 1e-5 (norm-scaled) in every slice every rank holds;
//   - under pipeline parallelism with MTP, a last-stage copy of the embedding that equals stage
//     0's bit for bit after every step;
//   - with dp > 1, gradient buckets reduced while backward was still running (small buckets, so
//     there are many), and with ZeRO-1 (no expert parallelism) less optimizer state per rank
//     than the moments of the whole model.
// The same for the tiny model with every layer an MoE layer under DualPipeV (its F&B blocks
// pair two MoE layers), for the tiny model as a DeepSeek-V2 on a sample of layouts, and in bf16
// mixed precision (bf16 weights, activations and moments) on a sample of layouts at the bf16
// tolerances below.
// The binary runs under mpirun; each layout runs where its rank count equals the world size.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <string>

#include "parallel/comm/tags.h"
#include "runtime/config/config.h"
#include "tests/models/test_configs.h"
#include "tests/support/layout.h"
#include "tests/support/layout_runs.h"
#include "tests/support/mpi_helpers.h"

namespace trident::testing {
namespace {

constexpr int64_t kSteps = 10;
constexpr double kStepTolerance = 1e-6;
constexpr double kWeightTolerance = 1e-5;
constexpr int64_t kBucketBytes = 4096;

// Elements of the last stage's embedding copy whose bits differ from stage 0's table (the same
// count on every rank; zero where no copy exists).
double embedding_copy_drift(const TrainerRun& run) {
  const models::parallelize::PipelinePartition& partition = run.trainer->partition();
  const models::ParameterStore& store = run.trainer->model().params();
  const char* const kEmbedding = "model.embed_tokens.weight";
  double differing = 0.0;
  parallel::comm::Communicator* pp = run.context->pp();
  if (pp != nullptr && run.trainer->optimizer().holds_embedding_copy()) {
    pp->send(store.get(kEmbedding).value, partition.first_rank(),
             parallel::comm::tags::kTests.first)
        ->wait();
  } else if (pp != nullptr && partition.embedding_copy(run.trainer->model().mtp_depth()) &&
             pp->rank() == partition.first_rank()) {
    const Tensor mine = store.get(kEmbedding).value.on(Device::CPU);
    const Tensor copy = Tensor::empty(mine.shape());
    pp->recv(copy, partition.last_rank(), parallel::comm::tags::kTests.first)->wait();
    differing = static_cast<double>(
        std::memcmp(mine.data<float>(), copy.data<float>(), mine.nbytes()) != 0);
  }
  return sum_over_world(differing);
}

struct Tolerances {
  double step = kStepTolerance;
  double weights = kWeightTolerance;
  bool trained_only = false;  // compare the router biases too
};

// Trains `config` on `layout` and on one rank and compares them as the file's header says.
void expect_layout_matches_one_rank(const Layout& layout, config::TridentConfig config,
                                    Tolerances tolerances = {}) {
  layout.apply(config);
  const TrainerRun& one = one_rank_run(config, kSteps);
  TrainerRun run = make_trainer_run(config, kBucketBytes);
  double worst_step = 0.0;
  for (int64_t s = 0; s < kSteps; ++s) {
    run.run(1);
    const train::StepMetrics& got = run.steps.back();
    const train::StepMetrics& want = one.steps[static_cast<size_t>(s)];
    expect_step_matches(got, want, tolerances.step);
    worst_step = std::max({worst_step, relative_difference(got.loss, want.loss),
                           relative_difference(got.grad_norm, want.grad_norm)});
    EXPECT_EQ(embedding_copy_drift(run), 0.0) << "step " << s + 1;
  }
  const HeldWeightError weights = worst_held_weight(
      run.trainer->model().params(), one.trainer->model().params(), tolerances.trained_only);
  EXPECT_LE(weights.error, tolerances.weights) << "in " << weights.name;
  if (tolerances.trained_only && world_rank() == 0) {
    std::printf("%s: worst loss or grad-norm difference %.3g, worst trained weight %.3g (%s)\n",
                layout.name().c_str(), worst_step, weights.error, weights.name.c_str());
  }
  if (layout.dp > 1) {
    EXPECT_GT(run.steps.back().grad_buckets_overlapped, 0);
  }
  if (layout.zero1 && layout.dp > 1 && layout.ep == 1) {
    EXPECT_LT(run.trainer->optimizer().state_bytes(),
              2 * run.trainer->model().params().numel() * static_cast<int64_t>(sizeof(float)));
  }
}

class PretrainLayouts : public ::testing::TestWithParam<Layout> {};

TEST_P(PretrainLayouts, MatchOneRank) {
  const Layout layout = GetParam();
  if (layout.ranks() != world_size()) {
    GTEST_SKIP() << layout.name() << " runs on " << layout.ranks() << " ranks";
  }
  expect_layout_matches_one_rank(layout, layout_test_config(layout.global_batch()));
}

// The tiny model as a DeepSeek-V2 (softmax group-limited routing, plain q_proj, 2 shared
// experts, no MTP, the device-level and communication balance losses) on a sample of layouts:
// the expert-parallel folds where experts' replicas sit on different dp indices or TP ranks, and
// pipelined ones.
class PretrainLayoutsDeepSeekV2 : public ::testing::TestWithParam<Layout> {};

TEST_P(PretrainLayoutsDeepSeekV2, MatchOneRank) {
  const Layout layout = GetParam();
  if (layout.ranks() != world_size()) {
    GTEST_SKIP() << layout.name() << " runs on " << layout.ranks() << " ranks";
  }
  config::TridentConfig config = layout_test_config(layout.global_batch());
  config::apply_overrides(config, models::testing::tiny_v2_overrides());
  expect_layout_matches_one_rank(layout, config);
}

INSTANTIATE_TEST_SUITE_P(
    TinyV2, PretrainLayoutsDeepSeekV2,
    ::testing::Values(
        // np 2
        Layout{1, 1, 2, 2}, Layout{2, 1, 1, 1, "1f1b"},
        // np 4
        Layout{1, 2, 2, 4}, Layout{1, 1, 4, 2, "1f1b", true}, Layout{2, 1, 2, 2, "zb-h1"},
        // np 8
        Layout{2, 2, 2, 4, "dualpipev", true}, Layout{1, 4, 2, 8}),
    LayoutName());

// DualPipeV with every layer an MoE layer: each F&B block then pairs two MoE layers, so the
// expert-parallel engine interleaves one micro-batch's forward all-to-alls with another's
// backward ones (ExpertParallelMoe::forward_backward_input) inside training. (In the tiny
// model's V the blocks pair a dense layer with an MoE layer on every rank, which runs the two
// one after the other.)
class PretrainLayoutsPairedMoe : public ::testing::TestWithParam<Layout> {};

TEST_P(PretrainLayoutsPairedMoe, MatchOneRank) {
  const Layout layout = GetParam();
  if (layout.ranks() != world_size()) {
    GTEST_SKIP() << layout.name() << " runs on " << layout.ranks() << " ranks";
  }
  config::TridentConfig config = layout_test_config(layout.global_batch());
  config.mutable_model()->set_first_k_dense_replace(0);
  expect_layout_matches_one_rank(layout, config);
}

INSTANTIATE_TEST_SUITE_P(TinyAllMoe, PretrainLayoutsPairedMoe,
                         ::testing::Values(
                             // np 2
                             Layout{2, 1, 1, 1, "dualpipev"},
                             // np 4
                             Layout{2, 2, 1, 2, "dualpipev"}, Layout{2, 2, 1, 2, "dualpipev", true},
                             // np 8
                             Layout{2, 4, 1, 4, "dualpipev"}),
                         LayoutName());

// bf16 weights, activations and AdamW moments (docs/precision.md) on the layouts that change
// summation orders: TP partial sums, the DP reduction with ZeRO-1, the expert dispatch, pipeline
// micro-batches.
//
// The tolerance is bf16's own error. A layout sums in another fp32 order (TP partial sums, the
// DP reduction, the micro-batch split), so now and then a value falls on the other side of a
// bf16 rounding boundary and moves by one bf16 step (2^-8 relative, where fp32 moves by 2^-24);
// a near-tie in the router then sends a token to another expert, and AdamW's normalised update
// turns small gradient differences of rarely used elements into whole steps. One rank in bf16
// is that error ε away from one rank in fp32 (nearly exact); a layout in bf16 carries its own ε,
// so the two bf16 runs may be up to 2ε apart. Every step metric must be within twice the largest
// relative difference of the two one-rank runs' metrics, and every trained weight within twice
// their largest weight difference. A broken layout (a lost reduction, a wrong scale) misses
// that by orders of magnitude. The router biases move in ±γ steps on the
// sign of a load difference and are left out; docs/precision.md gives the measured figures.
struct PrecisionScale {
  double step = 0.0;
  double weights = 0.0;
};

PrecisionScale bf16_against_fp32(const config::TridentConfig& bf16) {
  config::TridentConfig fp32 = bf16;
  config::apply_overrides(fp32, {"train.param_dtype=float32", "train.activation_dtype=float32",
                                 "train.moment_dtype=float32"});
  const TrainerRun& low = one_rank_run(bf16, kSteps);
  const TrainerRun& high = one_rank_run(fp32, kSteps);
  PrecisionScale scale;
  for (size_t s = 0; s < low.steps.size(); ++s) {
    const train::StepMetrics& a = low.steps[s];
    const train::StepMetrics& b = high.steps[s];
    for (const double d :
         {relative_difference(a.loss, b.loss), relative_difference(a.lm_loss, b.lm_loss),
          relative_difference(a.mtp_loss, b.mtp_loss),
          relative_difference(a.balance_loss, b.balance_loss),
          relative_difference(a.grad_norm, b.grad_norm)}) {
      scale.step = std::max(scale.step, d);
    }
  }
  scale.weights = worst_held_weight(low.trainer->model().params(), high.trainer->model().params(),
                                    /*trained_only=*/true)
                      .error;
  return scale;
}

class PretrainLayoutsBf16 : public ::testing::TestWithParam<Layout> {};

TEST_P(PretrainLayoutsBf16, MatchOneRank) {
  const Layout layout = GetParam();
  if (layout.ranks() != world_size()) {
    GTEST_SKIP() << layout.name() << " runs on " << layout.ranks() << " ranks";
  }
  config::TridentConfig config = layout_test_config(layout.global_batch());
  config::apply_overrides(config, {"train.param_dtype=bfloat16", "train.activation_dtype=bfloat16",
                                   "train.moment_dtype=bfloat16"});
  const PrecisionScale scale = bf16_against_fp32(config);
  // bf16 is in effect, and training in it follows fp32 (10 steps, every metric within 2%).
  EXPECT_GT(scale.step, 0.0);
  EXPECT_LT(scale.step, 0.02);
  if (world_rank() == 0) {
    std::printf("bf16 against fp32 on one rank: step metrics %.3g, weights %.3g\n", scale.step,
                scale.weights);
  }
  expect_layout_matches_one_rank(layout, config, {2 * scale.step, 2 * scale.weights, true});
}

INSTANTIATE_TEST_SUITE_P(TinyBf16, PretrainLayoutsBf16,
                         ::testing::Values(
                             // np 2
                             Layout{1, 2, 1, 2, "1f1b", true}, Layout{1, 1, 2, 1},
                             Layout{2, 1, 1, 1, "1f1b"},
                             // np 4
                             Layout{1, 2, 2, 4}, Layout{2, 2, 1, 2, "zb-h1", true}),
                         LayoutName());

INSTANTIATE_TEST_SUITE_P(Tiny, PretrainLayouts,
                         ::testing::ValuesIn(layouts_on({2, 4, 8}, /*heads=*/4, /*experts=*/8)),
                         LayoutName());

}  // namespace
}  // namespace trident::testing
