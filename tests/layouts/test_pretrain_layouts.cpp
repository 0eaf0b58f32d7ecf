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
// The same for the tiny model as a DeepSeek-V2 on a sample of layouts.
// The binary runs under mpirun; each layout runs where its rank count equals the world size.
#include <gtest/gtest.h>

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
    const Tensor& mine = store.get(kEmbedding).value;
    const Tensor copy = Tensor::empty(mine.shape());
    pp->recv(copy, partition.last_rank(), parallel::comm::tags::kTests.first)->wait();
    differing = static_cast<double>(
        std::memcmp(mine.data<float>(), copy.data<float>(), mine.nbytes()) != 0);
  }
  return sum_over_world(differing);
}

// Trains `config` on `layout` and on one rank and compares them as the file's header says.
void expect_layout_matches_one_rank(const Layout& layout, config::TridentConfig config) {
  layout.apply(config);
  const TrainerRun& one = one_rank_run(config, kSteps);
  TrainerRun run = make_trainer_run(config, kBucketBytes);
  for (int64_t s = 0; s < kSteps; ++s) {
    run.run(1);
    expect_step_matches(run.steps.back(), one.steps[static_cast<size_t>(s)], kStepTolerance);
    EXPECT_EQ(embedding_copy_drift(run), 0.0) << "step " << s + 1;
  }
  EXPECT_LE(held_weight_error(run.trainer->model().params(), one.trainer->model().params()),
            kWeightTolerance);
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

INSTANTIATE_TEST_SUITE_P(Tiny, PretrainLayouts,
                         ::testing::ValuesIn(layouts_on({2, 4, 8}, /*heads=*/4, /*experts=*/8)),
                         LayoutName());

}  // namespace
}  // namespace trident::testing
