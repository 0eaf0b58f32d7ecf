// Checkpoints of a whole Trainer under mpirun (1, 2 and 4 ranks), on the tiny model with 8
// decoder layers so every pipeline stage holds layers.
//
// ExactResume: 20 steps straight against 10 steps, a save, a new Trainer (which first trains
// two steps of its own, so stale master weights or moments would show), a load and 10 more
// steps, in the same layout: losses, gradient norms and final weights bit for bit (one rank;
// dp2 with ZeRO-1; dp2·ep2 with ZeRO-1 over dp and over edp; dp4·ep2 and dp2·tp2 with ZeRO-1;
// pp2 with 1F1B, whose last stage keeps the MTP copy of the embedding; pp2·dp2·ep2, pp2·dp2
// with ZeRO-1 and interleaved pp4).
//
// ReshardingChain (4 ranks): dp4·ep2 ZeRO-1 → dp2·tp2 ZeRO-1 → one rank, and pp2·dp2·ep2
// ZeRO-1 → dp4·ep4 ZeRO-1 → one rank. After every save, the saving trainer's slices equal the
// file's tensors; after every load, the loading trainer's slices equal them too (bit for bit;
// under pipeline parallelism both copies of the embedding); the losses of every step and the
// final weights match an uninterrupted one-rank run within 1e-5 relative (fp32: the layouts
// sum in other orders), so the moments, re-split into other ZeRO-1 shards, were carried over.
//
// Evaluation: the held-out loss of pipeline layouts (1F1B, DualPipeV whose V passes activations
// between stages of one rank, interleaved pp4, pp2·dp2) equals the one-rank loss within 1e-5,
// before and after training.
//
// HfExport: each pipeline rank writes its own shard (the embedding once) and rank 0 the index;
// every tensor equals a one-rank export of the same weights (loaded from a checkpoint of the
// pipeline run) bit for bit, and the two directories name the same tensors.
//
// StopSignal: SIGTERM is recorded by the handler and agreed on over the job.
#include <gtest/gtest.h>
#include <mpi.h>

#include <cmath>
#include <csignal>
#include <cstring>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "runtime/config/config.h"
#include "runtime/io/hf_weights.h"
#include "runtime/io/hf_weights_sharded.h"
#include "runtime/io/safetensors.h"
#include "runtime/train/stop_signal.h"
#include "runtime/train/trainer.h"
#include "runtime/train/trainer_checkpoint.h"
#include "tests/support/layout.h"
#include "tests/support/layout_runs.h"
#include "tests/support/mpi_helpers.h"
#include "tests/support/shared_temp_dir.h"

namespace trident::train {
namespace {

using testing::Layout;
using testing::SharedTempDir;
using testing::TrainerRun;
using trident::testing::relative_difference;
using trident::testing::world_rank;
using trident::testing::world_size;

constexpr int64_t kSteps = 20;
constexpr double kTolerance = 1e-5;

// `layout` (the one-rank layout: each process alone) of the tiny test model with 8 layers and 16
// rows a step, and small gradient buckets, so every ZeRO-1 shard is many flat ranges; `extra`
// overrides more fields.
TrainerRun make_run(const Layout& layout, const std::vector<std::string>& extra = {}) {
  config::TridentConfig config = testing::layout_test_config(16);
  config::apply_overrides(config, {"model.num_hidden_layers=8", "train.warmup_steps=3"});
  config::apply_overrides(config, extra);
  layout.apply(config);
  return testing::make_trainer_run(config, /*bucket_bytes=*/4096);
}

std::vector<float> values_of(const Tensor& t) { return t.to_vector(); }  // a host copy

// ---------------------------------------------------------------------------------------------

std::vector<Layout> exact_layouts() {
  switch (world_size()) {
    case 1:
      return {Layout{}, Layout{1, 1, 1, 1, "1f1b", true}};
    case 2:
      return {Layout{1, 2, 1, 1, "1f1b", true}, Layout{1, 2, 1, 2, "1f1b", true}, Layout{2}};
    case 4:
      return {Layout{1, 4, 1, 2, "1f1b", true}, Layout{1, 2, 2, 1, "1f1b", true},
              Layout{2, 2, 1, 2}, Layout{2, 2, 1, 1, "1f1b", true},
              Layout{4, 1, 1, 1, "interleaved"}};
    default:
      return {};
  }
}

// 20 steps straight against 10, a save, a fresh trainer that trains 2 steps, a load and 10 more:
// the same losses and weights bit for bit.
void expect_exact_resume(const Layout& layout, const std::vector<std::string>& extra = {}) {
  SCOPED_TRACE(layout.name());
  std::vector<StepMetrics> straight;
  std::vector<float> straight_weights;
  {
    TrainerRun run = make_run(layout, extra);
    for (int64_t s = 0; s < kSteps; ++s) straight.push_back(run.trainer->step());
    straight_weights = values_of(run.trainer->model().params().flat_values());
  }
  SharedTempDir dir;
  std::string path;
  std::vector<StepMetrics> resumed;
  {
    TrainerRun first = make_run(layout, extra);
    for (int64_t s = 0; s < kSteps / 2; ++s) resumed.push_back(first.trainer->step());
    path = save_trainer_checkpoint(*first.trainer, dir.path(), first.context->job());
  }
  {
    TrainerRun second = make_run(layout, extra);
    // A trainer that already trained (its ZeRO-1 master weights and moments hold other
    // values) must be fully overwritten by the load.
    second.trainer->step();
    second.trainer->step();
    const io::LoadedCheckpoint loaded =
        load_trainer_checkpoint(*second.trainer, path, second.context->job());
    EXPECT_TRUE(loaded.optimizer_loaded);
    EXPECT_EQ(loaded.state.step, kSteps / 2);
    EXPECT_EQ(loaded.state.layout.pp, layout.pp);
    EXPECT_EQ(second.trainer->step_index(), kSteps / 2);
    for (int64_t s = kSteps / 2; s < kSteps; ++s) resumed.push_back(second.trainer->step());
    const std::vector<float> weights = values_of(second.trainer->model().params().flat_values());
    ASSERT_EQ(weights.size(), straight_weights.size());
    EXPECT_EQ(std::memcmp(weights.data(), straight_weights.data(), weights.size() * sizeof(float)),
              0)
        << "final weights differ from the uninterrupted run";
  }
  for (int64_t s = 0; s < kSteps; ++s) {
    const StepMetrics& a = resumed[static_cast<size_t>(s)];
    const StepMetrics& b = straight[static_cast<size_t>(s)];
    EXPECT_EQ(a.step, b.step);
    EXPECT_EQ(a.loss, b.loss) << "step " << b.step;
    EXPECT_EQ(a.grad_norm, b.grad_norm) << "step " << b.step;
    EXPECT_EQ(a.lr, b.lr) << "step " << b.step;
  }
  if (world_rank() == 0) {
    std::printf("[ %s ] resumed at step %lld: final loss %.9g (straight %.9g)\n",
                layout.name().c_str(), static_cast<long long>(kSteps / 2), resumed.back().loss,
                straight.back().loss);
  }
}

TEST(TrainerCheckpoint, ExactResume) {
  const std::vector<Layout> layouts = exact_layouts();
  if (layouts.empty()) GTEST_SKIP() << "no layouts for " << world_size() << " ranks";
  for (const Layout& layout : layouts) expect_exact_resume(layout);
}

// bf16 weights, activations and moments (docs/precision.md): the bf16 moments go to the file as
// fp32 (exactly: bf16 widens without loss) and come back to the same bits, and the bf16 compute
// copies are rebuilt from the loaded masters.
TEST(TrainerCheckpoint, ExactResumeInBf16) {
  std::vector<Layout> layouts;
  if (world_size() == 1) layouts = {Layout{}};
  if (world_size() == 2) layouts = {Layout{1, 2, 1, 2, "1f1b", true}, Layout{2}};
  if (layouts.empty()) GTEST_SKIP() << "no bf16 layouts for " << world_size() << " ranks";
  for (const Layout& layout : layouts) {
    expect_exact_resume(layout, {"train.param_dtype=bfloat16", "train.activation_dtype=bfloat16",
                                 "train.moment_dtype=bfloat16"});
  }
}

// ---------------------------------------------------------------------------------------------

// Ranks whose parameters differ from the checkpoint's tensors, and ranks holding the embedding
// (both copies under pipeline parallelism), counted over the world.
struct Comparison {
  int64_t mismatched = 0;
  int64_t embedding_holders = 0;
};

Comparison compare_with_file(const Trainer& trainer, const std::string& path) {
  TrainerRun whole = make_run(Layout{});
  io::load_checkpoint(path, whole.trainer->model().params(), io::MomentsView{}, MPI_COMM_SELF);
  const double error =
      testing::held_weight_error(trainer.model().params(), whole.trainer->model().params());
  const bool embedding = trainer.model().params().has("model.embed_tokens.weight");
  return {static_cast<int64_t>(testing::sum_over_world(error == 0.0 ? 0.0 : 1.0)),
          static_cast<int64_t>(testing::sum_over_world(embedding ? 1.0 : 0.0))};
}

struct Link {
  Layout layout;
  int64_t until;  // train through this step, then save
  int64_t embedding_holders;
};

class ReshardingChain : public ::testing::TestWithParam<std::vector<Link>> {};

TEST_P(ReshardingChain, CarriesWeightsAndMoments) {
  if (world_size() != 4) GTEST_SKIP() << "the chains run on 4 ranks";
  // The uninterrupted run, on one rank (every process runs it).
  TrainerRun oracle = make_run(Layout{});
  oracle.run(kSteps);
  const SharedTempDir dir;
  std::string path;
  std::vector<StepMetrics> got;
  std::unique_ptr<Trainer> last;
  for (const Link& link : GetParam()) {
    SCOPED_TRACE(link.layout.name());
    TrainerRun run = make_run(link.layout);
    if (!path.empty()) {
      const io::LoadedCheckpoint loaded =
          load_trainer_checkpoint(*run.trainer, path, run.context->job());
      EXPECT_TRUE(loaded.optimizer_loaded);
      const Comparison check = compare_with_file(*run.trainer, path);
      EXPECT_EQ(check.mismatched, 0) << "after loading " << path;
      EXPECT_EQ(check.embedding_holders, link.embedding_holders);
    }
    while (run.trainer->step_index() < link.until) got.push_back(run.trainer->step());
    if (link.until < kSteps) {
      // Every layout saves over the world: the one-rank link is last and does not save.
      path = save_trainer_checkpoint(*run.trainer, dir.path(), run.context->job());
      const Comparison check = compare_with_file(*run.trainer, path);
      EXPECT_EQ(check.mismatched, 0) << "saved " << path;
      EXPECT_EQ(check.embedding_holders, link.embedding_holders);
    } else {
      last = std::move(run.trainer);
    }
  }
  ASSERT_EQ(got.size(), oracle.steps.size());
  for (size_t s = 0; s < got.size(); ++s) {
    EXPECT_EQ(got[s].step, oracle.steps[s].step);
    EXPECT_LE(relative_difference(got[s].loss, oracle.steps[s].loss), kTolerance)
        << "step " << s + 1;
    EXPECT_LE(relative_difference(got[s].grad_norm, oracle.steps[s].grad_norm), kTolerance)
        << "step " << s + 1;
  }
  const double error =
      testing::held_weight_error(last->model().params(), oracle.trainer->model().params());
  EXPECT_LE(error, kTolerance) << "final weights after the chain";
  if (world_rank() == 0) {
    std::printf(
        "[ chain ] final loss %.9g (uninterrupted %.9g), final-weight relative error %.3g\n",
        got.back().loss, oracle.steps.back().loss, error);
  }
}

INSTANTIATE_TEST_SUITE_P(
    Layouts, ReshardingChain,
    ::testing::Values(
        // dp4·ep2 ZeRO-1 → dp2·tp2 ZeRO-1 → one rank (the embedding on every rank).
        std::vector<Link>{{Layout{1, 4, 1, 2, "1f1b", true}, 8, 4},
                          {Layout{1, 2, 2, 1, "1f1b", true}, 14, 4},
                          {Layout{}, kSteps, 4}},
        // pp2·dp2·ep2 ZeRO-1 with 1F1B: stage 0 and the last stage on different ranks, so both
        // pipeline ranks of each dp replica hold the embedding → dp4·ep4 ZeRO-1 → one rank.
        std::vector<Link>{{Layout{2, 2, 1, 2, "1f1b", true}, 8, 4},
                          {Layout{1, 4, 1, 4, "1f1b", true}, 14, 4},
                          {Layout{}, kSteps, 4}}));

// ---------------------------------------------------------------------------------------------

std::vector<Layout> eval_layouts() {
  switch (world_size()) {
    case 2:
      return {Layout{2}, Layout{2, 1, 1, 1, "dualpipev"}};
    case 4:
      return {Layout{2, 2}, Layout{4, 1, 1, 1, "interleaved"}};
    default:
      return {};
  }
}

TEST(PipelineCheckpoint, Evaluation) {
  const std::vector<Layout> layouts = eval_layouts();
  if (layouts.empty()) GTEST_SKIP() << "no pipeline layouts for " << world_size() << " ranks";
  TrainerRun alone = make_run(Layout{});
  const EvalMetrics before = alone.trainer->evaluate(2);
  alone.run(3);
  const EvalMetrics after = alone.trainer->evaluate(2);
  ASSERT_GT(before.targets, 0);
  for (const Layout& layout : layouts) {
    SCOPED_TRACE(layout.name());
    TrainerRun run = make_run(layout);
    const EvalMetrics got_before = run.trainer->evaluate(2);
    EXPECT_EQ(got_before.targets, before.targets);
    EXPECT_LE(relative_difference(got_before.lm_loss, before.lm_loss), kTolerance);
    run.run(3);
    const EvalMetrics got_after = run.trainer->evaluate(2);
    EXPECT_LE(relative_difference(got_after.lm_loss, after.lm_loss), kTolerance);
    EXPECT_NE(got_after.lm_loss, got_before.lm_loss) << "training should move the loss";
    EXPECT_TRUE(testing::same_on_every_rank(got_after.lm_loss));
  }
}

std::vector<Layout> export_layouts() {
  switch (world_size()) {
    case 2:
      return {Layout{2}};
    case 4:
      return {Layout{2, 2}, Layout{4, 1, 1, 1, "dualpipev"}};
    default:
      return {};
  }
}

TEST(PipelineCheckpoint, HfExport) {
  const std::vector<Layout> layouts = export_layouts();
  if (layouts.empty()) GTEST_SKIP() << "no pipeline layouts for " << world_size() << " ranks";
  for (const Layout& layout : layouts) {
    SCOPED_TRACE(layout.name());
    const SharedTempDir dir;
    const std::string sharded = dir / "sharded";
    const std::string whole = dir / "whole";
    TrainerRun run = make_run(layout);
    run.run(3);
    io::save_hf_weights_sharded(run.trainer->model().params(), sharded, MPI_COMM_WORLD);
    const std::string path = save_trainer_checkpoint(*run.trainer, dir.path(), MPI_COMM_WORLD);
    if (world_rank() != 0) continue;
    TrainerRun one = make_run(Layout{});
    io::load_checkpoint(path, one.trainer->model().params(), io::MomentsView{}, MPI_COMM_SELF);
    io::save_hf_weights(one.trainer->model().params(), whole);
    int shards = 0;
    for (const auto& entry : std::filesystem::directory_iterator(sharded)) {
      shards += entry.path().extension() == ".safetensors" ? 1 : 0;
    }
    EXPECT_EQ(shards, layout.pp) << "one shard per pipeline rank";
    const io::SafetensorsDirectory a(sharded);
    const io::SafetensorsDirectory b(whole);
    EXPECT_EQ(a.names(), b.names());
    int64_t differ = 0;
    for (const std::string& name : b.names()) {
      if (!a.contains(name)) continue;
      const Tensor x = a.load(name, DType::F32);
      const Tensor y = b.load(name, DType::F32);
      ASSERT_EQ(x.shape(), y.shape()) << name;
      differ += std::memcmp(x.data<float>(), y.data<float>(),
                            static_cast<size_t>(x.numel()) * sizeof(float)) != 0;
    }
    EXPECT_EQ(differ, 0) << "tensors of the sharded export differ from the one-rank export";
    // The sharded export loads back like any HF directory.
    TrainerRun reloaded = make_run(Layout{});
    io::load_hf_weights(reloaded.trainer->model().params(), sharded);
    EXPECT_EQ(testing::held_weight_error(reloaded.trainer->model().params(),
                                         one.trainer->model().params()),
              0.0);
  }
}

// SIGTERM (like SIGUSR1, which the pretrain command test sends) is only recorded, and the ranks
// agree on it: a signal raised on the last rank alone stops every rank.
TEST(StopSignal, RecordedAndAgreedOverTheJob) {
  {
    const StopSignalScope scope;
    EXPECT_EQ(stop_signal_received(), 0);
    EXPECT_EQ(agree_on_stop(MPI_COMM_WORLD), 0);
    if (world_rank() == world_size() - 1) std::raise(SIGTERM);
    EXPECT_EQ(stop_signal_received(), world_rank() == world_size() - 1 ? SIGTERM : 0);
    EXPECT_EQ(agree_on_stop(MPI_COMM_WORLD), SIGTERM);
  }
  // A new scope starts clean.
  const StopSignalScope scope;
  EXPECT_EQ(agree_on_stop(MPI_COMM_WORLD), 0);
}

}  // namespace
}  // namespace trident::train
