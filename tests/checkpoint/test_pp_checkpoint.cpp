// Checkpoints of a pipeline-parallel Trainer under mpirun (2 and 4 ranks), on the tiny model with
// 8 decoder layers (as tests/pp/test_pp_training.cpp) so every stage holds layers.
//
// ExactResume: 20 steps straight against 10 steps, a save, a new Trainer (which first trains
// two steps of its own), a load and 10 more steps in the same layout: losses, gradient norms and
// the final weights of every rank bit for bit (pp2 with 1F1B, whose last stage keeps the MTP
// copy of the embedding; pp2·dp2·ep2, pp2·dp2 with ZeRO-1 and pp4 on 4 ranks).
//
// Evaluation: the held-out loss of pipeline layouts (1F1B, DualPipeV whose V passes activations
// between stages of one rank, interleaved pp4, pp2·dp2) equals the one-rank loss within 1e-5,
// before and after training.
//
// HfExport: each pipeline rank writes its own shard (the embedding once) and rank 0 the index;
// every tensor equals a one-rank export of the same weights (loaded from a checkpoint of the
// pipeline run) bit for bit, and the two directories name the same tensors.
//
// ReshardingChain (4 ranks): pp2·dp2·ep2 with ZeRO-1 → dp4·ep4 with ZeRO-1 → one rank. Each
// pipeline rank writes only its stages and the embedding (held twice with MTP) once; after
// every save and every load each rank's parameters equal the file's tensors bit for bit (both
// embedding copies too), and the losses of every step and the final weights match an
// uninterrupted one-rank run within 1e-5 relative.
#include <gtest/gtest.h>
#include <mpi.h>
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "parallel/comm/mpi_backend.h"
#include "parallel/mesh.h"
#include "runtime/config/config.h"
#include "runtime/io/hf_weights_sharded.h"
#include "runtime/io/safetensors.h"
#include "runtime/train/data_setup.h"
#include "runtime/train/trainer.h"
#include "runtime/train/trainer_checkpoint.h"
#include "tests/parallel/test_helpers.h"

namespace trident::train {
namespace {

using parallel::testing::relative_difference;
using parallel::testing::world_rank;
using parallel::testing::world_size;

constexpr int64_t kSteps = 20;
constexpr double kTolerance = 1e-5;

config::TridentConfig base_config() {
  config::TridentConfig config = config::load_config(config::resolve_config_path("tiny"));
  config::apply_overrides(
      config, {"model.num_hidden_layers=8", "train.steps=20", "train.global_batch=16",
               "train.micro_batch=2", "train.grad_clip=0.5", "train.aux_loss_alpha=0.001",
               "train.bias_update_speed=0.001", "train.mtp_loss_weight=0.3",
               "train.adam_eps=1e-6", "train.lr=1e-3", "train.min_lr=1e-4",
               "train.warmup_steps=3"});
  return config;
}

// A layout over the whole job (pp · dp = world size; ep folds into dp), or one rank per process.
struct Layout {
  int pp = 1;
  int dp = 1;
  int ep = 1;
  bool zero1 = false;
  bool alone = false;
  std::string schedule = "1f1b";
  std::string name() const {
    if (alone) return "one rank";
    return (pp > 1 ? "pp" + std::to_string(pp) + " " + schedule + "·" : std::string()) + "dp" +
           std::to_string(dp) + (ep > 1 ? "·ep" + std::to_string(ep) : "") +
           (zero1 ? " zero1" : "");
  }
  MPI_Comm comm() const { return alone ? MPI_COMM_SELF : MPI_COMM_WORLD; }
};

struct TrainerRun {
  std::unique_ptr<parallel::Mesh> mesh;
  std::unique_ptr<Trainer> trainer;
};

TrainerRun make_run(const Layout& layout) {
  config::TridentConfig config = base_config();
  TrainerRun run;
  if (layout.alone) {
    run.trainer = std::make_unique<Trainer>(config, make_train_sampler(config),
                                            make_eval_sampler(config));
    return run;
  }
  config::ParallelConfig& par = *config.mutable_parallel();
  par.set_pp(layout.pp);
  par.set_schedule(layout.schedule);
  if (layout.schedule == "interleaved") par.set_virtual_stages(2);
  par.set_dp(layout.dp);
  par.set_ep(layout.ep);
  par.set_zero1(layout.zero1);
  parallel::MeshSizes sizes;
  sizes.pp = layout.pp;
  sizes.dp = layout.dp;
  sizes.ep = layout.ep;
  run.mesh = std::make_unique<parallel::Mesh>(sizes);
  TrainerOptions options;
  if (layout.pp > 1) options.pp = std::make_shared<parallel::MpiBackend>(run.mesh->pp());
  options.dp = std::make_shared<parallel::MpiBackend>(run.mesh->dp());
  if (layout.ep > 1) {
    options.ep = std::make_shared<parallel::MpiBackend>(run.mesh->ep());
    options.edp = std::make_shared<parallel::MpiBackend>(run.mesh->edp());
  }
  options.bucket_bytes = 4096;
  run.trainer = std::make_unique<Trainer>(config, make_train_sampler(config),
                                          make_eval_sampler(config), options);
  return run;
}

// A fresh directory, the same on every rank; removed with the object.
struct SharedTempDir {
  std::string path;
  SharedTempDir() {
    char name[256] = {};
    if (world_rank() == 0) {
      std::snprintf(name, sizeof(name), "/tmp/trident_pp_ckpt_XXXXXX");
      if (mkdtemp(name) == nullptr) std::abort();
    }
    MPI_Bcast(name, sizeof(name), MPI_CHAR, 0, MPI_COMM_WORLD);
    path = name;
  }
  ~SharedTempDir() {
    MPI_Barrier(MPI_COMM_WORLD);
    if (world_rank() == 0) std::filesystem::remove_all(path);
  }
};

std::vector<float> values_of(const Tensor& t) {
  const float* p = t.data<float>();
  return std::vector<float>(p, p + t.numel());
}

// ---------------------------------------------------------------------------------------------

std::vector<Layout> exact_layouts() {
  switch (world_size()) {
    case 2:
      return {Layout{2, 1, 1}};
    case 4:
      return {Layout{2, 2, 2}, Layout{2, 2, 1, true},
              Layout{4, 1, 1, false, false, "interleaved"}};
    default:
      return {};
  }
}

TEST(PipelineCheckpoint, ExactResume) {
  const std::vector<Layout> layouts = exact_layouts();
  if (layouts.empty()) GTEST_SKIP() << "no pipeline layouts for " << world_size() << " ranks";
  for (const Layout& layout : layouts) {
    SCOPED_TRACE(layout.name());
    std::vector<StepMetrics> straight;
    std::vector<float> straight_weights;
    {
      TrainerRun run = make_run(layout);
      ASSERT_NE(run.trainer->pipeline_partition(), nullptr);
      for (int64_t s = 0; s < kSteps; ++s) straight.push_back(run.trainer->step());
      straight_weights = values_of(run.trainer->model().params().flat_values());
    }
    SharedTempDir dir;
    std::string path;
    std::vector<StepMetrics> resumed;
    {
      TrainerRun first = make_run(layout);
      for (int64_t s = 0; s < kSteps / 2; ++s) resumed.push_back(first.trainer->step());
      path = save_trainer_checkpoint(*first.trainer, dir.path, layout.comm());
    }
    {
      TrainerRun second = make_run(layout);
      second.trainer->step();
      second.trainer->step();
      const io::LoadedCheckpoint loaded =
          load_trainer_checkpoint(*second.trainer, path, layout.comm());
      EXPECT_TRUE(loaded.optimizer_loaded);
      EXPECT_EQ(loaded.state.layout.pp, layout.pp);
      EXPECT_EQ(second.trainer->step_index(), kSteps / 2);
      for (int64_t s = kSteps / 2; s < kSteps; ++s) resumed.push_back(second.trainer->step());
      const std::vector<float> weights = values_of(second.trainer->model().params().flat_values());
      ASSERT_EQ(weights.size(), straight_weights.size());
      EXPECT_EQ(
          std::memcmp(weights.data(), straight_weights.data(), weights.size() * sizeof(float)), 0)
          << "final weights of rank " << world_rank() << " differ from the uninterrupted run";
    }
    for (int64_t s = 0; s < kSteps; ++s) {
      const StepMetrics& a = resumed[static_cast<size_t>(s)];
      const StepMetrics& b = straight[static_cast<size_t>(s)];
      EXPECT_EQ(a.step, b.step);
      EXPECT_EQ(a.loss, b.loss) << "step " << b.step;
      EXPECT_EQ(a.grad_norm, b.grad_norm) << "step " << b.step;
    }
    if (world_rank() == 0) {
      std::printf("[ %s ] resumed at step %lld: final loss %.9g (straight %.9g)\n",
                  layout.name().c_str(), static_cast<long long>(kSteps / 2), resumed.back().loss,
                  straight.back().loss);
    }
  }
}

// ---------------------------------------------------------------------------------------------

// Elements of `local` (a rank's slice of a parameter) that differ from the whole tensor.
int64_t slice_mismatches(const models::Parameter& local, const Tensor& whole) {
  const Shape& shape = local.spec->shape;
  const float* a = local.value.data<float>();
  const float* b = whole.data<float>();
  if (local.slice.dim < 0) {
    if (local.value.numel() != whole.numel()) return local.value.numel() + 1;
    return std::memcmp(a, b, static_cast<size_t>(whole.numel()) * sizeof(float)) != 0 ? 1 : 0;
  }
  const size_t dim = static_cast<size_t>(local.slice.dim);
  int64_t outer = 1, inner = 1;
  for (size_t i = 0; i < dim; ++i) outer *= shape[i];
  for (size_t i = dim + 1; i < shape.size(); ++i) inner *= shape[i];
  const int64_t extent = local.slice.extent;
  int64_t bad = 0;
  for (int64_t o = 0; o < outer; ++o) {
    for (int64_t m = 0; m < extent; ++m) {
      const float* x = a + (o * extent + m) * inner;
      const float* y = b + (o * shape[dim] + local.slice.begin + m) * inner;
      bad += std::memcmp(x, y, static_cast<size_t>(inner) * sizeof(float)) != 0 ? 1 : 0;
    }
  }
  return bad;
}

// Parameters of this rank's store that differ from the checkpoint's tensors, summed over the
// world; `held` counts the parameters compared (the embedding twice under pipeline parallelism).
struct Comparison {
  int64_t mismatched = 0;
  int64_t embedding_holders = 0;
};

Comparison compare_with_file(const Trainer& trainer, const std::string& path) {
  TrainerRun whole = make_run(Layout{1, 1, 1, false, true});
  io::load_checkpoint(path, whole.trainer->model().params(), io::MomentsView{}, MPI_COMM_SELF);
  std::vector<int64_t> counts{0, 0};
  for (const models::Parameter& param : trainer.model().params().parameters()) {
    const Tensor& want = whole.trainer->model().params().get(param.spec->name).value;
    if (slice_mismatches(param, want) != 0) ++counts[0];
    if (param.spec->name == "model.embed_tokens.weight") ++counts[1];
  }
  MPI_Allreduce(MPI_IN_PLACE, counts.data(), 2, MPI_INT64_T, MPI_SUM, MPI_COMM_WORLD);
  return {counts[0], counts[1]};
}

TEST(PipelineCheckpoint, ReshardingChain) {
  if (world_size() != 4) GTEST_SKIP() << "the chain runs on 4 ranks";
  std::vector<StepMetrics> oracle;
  std::unique_ptr<Trainer> oracle_trainer;
  {
    TrainerRun run = make_run(Layout{1, 1, 1, false, true});
    for (int64_t s = 0; s < kSteps; ++s) oracle.push_back(run.trainer->step());
    oracle_trainer = std::move(run.trainer);
  }
  struct Link {
    Layout layout;
    int64_t until;  // train through this step, then save
    int64_t embedding_holders;
  };
  // pp2·dp2·ep2 ZeRO-1 with 1F1B: stage 0 and the last stage on different ranks, so both pipeline
  // ranks of each dp replica hold the embedding (4 holders over the world).
  const std::vector<Link> chain = {{Layout{2, 2, 2, true}, 8, 4},
                                   {Layout{1, 4, 4, true}, 14, 4},
                                   {Layout{1, 1, 1, false, true}, kSteps, 4}};
  SharedTempDir dir;
  std::string path;
  std::vector<StepMetrics> got;
  std::unique_ptr<Trainer> last;
  for (const Link& link : chain) {
    SCOPED_TRACE(link.layout.name());
    TrainerRun run = make_run(link.layout);
    if (!path.empty()) {
      const io::LoadedCheckpoint loaded =
          load_trainer_checkpoint(*run.trainer, path, link.layout.comm());
      EXPECT_TRUE(loaded.optimizer_loaded);
      const Comparison loaded_check = compare_with_file(*run.trainer, path);
      EXPECT_EQ(loaded_check.mismatched, 0) << "after loading " << path;
      EXPECT_EQ(loaded_check.embedding_holders, link.embedding_holders);
    }
    while (run.trainer->step_index() < link.until) got.push_back(run.trainer->step());
    if (link.until < kSteps) {
      path = save_trainer_checkpoint(*run.trainer, dir.path, link.layout.comm());
      const Comparison saved = compare_with_file(*run.trainer, path);
      EXPECT_EQ(saved.mismatched, 0) << "saved " << path;
      EXPECT_EQ(saved.embedding_holders, link.embedding_holders);
    } else {
      last = std::move(run.trainer);
    }
  }
  ASSERT_EQ(got.size(), oracle.size());
  for (size_t s = 0; s < got.size(); ++s) {
    EXPECT_EQ(got[s].step, oracle[s].step);
    EXPECT_LE(relative_difference(got[s].loss, oracle[s].loss), kTolerance) << "step " << s + 1;
    EXPECT_LE(relative_difference(got[s].grad_norm, oracle[s].grad_norm), kTolerance)
        << "step " << s + 1;
  }
  double diff2 = 0.0, norm2 = 0.0;
  const float* a = last->model().params().flat_values().data<float>();
  const float* b = oracle_trainer->model().params().flat_values().data<float>();
  for (int64_t i = 0; i < last->model().params().numel(); ++i) {
    diff2 += (static_cast<double>(a[i]) - b[i]) * (static_cast<double>(a[i]) - b[i]);
    norm2 += static_cast<double>(b[i]) * b[i];
  }
  const double error = std::sqrt(diff2 / norm2);
  EXPECT_LE(error, kTolerance) << "final weights after the chain";
  if (world_rank() == 0) {
    std::printf(
        "[ chain pp2·dp2·ep2 zero1 → dp4·ep4 zero1 → one rank ] final loss %.9g "
        "(uninterrupted %.9g), final-weight relative error %.3g\n",
        got.back().loss, oracle.back().loss, error);
  }
}

// ---------------------------------------------------------------------------------------------

std::vector<Layout> eval_layouts() {
  switch (world_size()) {
    case 2:
      return {Layout{2, 1, 1}, Layout{2, 1, 1, false, false, "dualpipev"}};
    case 4:
      return {Layout{2, 2, 1}, Layout{4, 1, 1, false, false, "interleaved"}};
    default:
      return {};
  }
}

TEST(PipelineCheckpoint, Evaluation) {
  const std::vector<Layout> layouts = eval_layouts();
  if (layouts.empty()) GTEST_SKIP() << "no pipeline layouts for " << world_size() << " ranks";
  TrainerRun alone = make_run(Layout{1, 1, 1, false, true});
  const EvalMetrics before = alone.trainer->evaluate(2);
  for (int s = 0; s < 3; ++s) alone.trainer->step();
  const EvalMetrics after = alone.trainer->evaluate(2);
  ASSERT_GT(before.targets, 0);
  for (const Layout& layout : layouts) {
    SCOPED_TRACE(layout.name());
    TrainerRun run = make_run(layout);
    const EvalMetrics got_before = run.trainer->evaluate(2);
    EXPECT_EQ(got_before.targets, before.targets);
    EXPECT_LE(relative_difference(got_before.lm_loss, before.lm_loss), kTolerance);
    for (int s = 0; s < 3; ++s) run.trainer->step();
    const EvalMetrics got_after = run.trainer->evaluate(2);
    EXPECT_LE(relative_difference(got_after.lm_loss, after.lm_loss), kTolerance);
    EXPECT_NE(got_after.lm_loss, got_before.lm_loss) << "training should move the loss";
    EXPECT_TRUE(parallel::testing::same_on_every_rank(got_after.lm_loss));
    if (world_rank() == 0) {
      std::printf("[ %s ] held-out loss %.9g -> %.9g (one rank %.9g -> %.9g)\n",
                  layout.name().c_str(), got_before.lm_loss, got_after.lm_loss, before.lm_loss,
                  after.lm_loss);
    }
  }
}

std::vector<Layout> export_layouts() {
  switch (world_size()) {
    case 2:
      return {Layout{2, 1, 1}};
    case 4:
      return {Layout{2, 2, 1}, Layout{4, 1, 1, false, false, "dualpipev"}};
    default:
      return {};
  }
}

TEST(PipelineCheckpoint, HfExport) {
  const std::vector<Layout> layouts = export_layouts();
  if (layouts.empty()) GTEST_SKIP() << "no pipeline layouts for " << world_size() << " ranks";
  for (const Layout& layout : layouts) {
    SCOPED_TRACE(layout.name());
    SharedTempDir dir;
    const std::string sharded = dir.path + "/sharded";
    const std::string whole = dir.path + "/whole";
    TrainerRun run = make_run(layout);
    for (int s = 0; s < 3; ++s) run.trainer->step();
    io::save_hf_weights_sharded(run.trainer->model().params(), sharded, MPI_COMM_WORLD);
    const std::string path = save_trainer_checkpoint(*run.trainer, dir.path, MPI_COMM_WORLD);
    if (world_rank() == 0) {
      TrainerRun one = make_run(Layout{1, 1, 1, false, true});
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
      TrainerRun reloaded = make_run(Layout{1, 1, 1, false, true});
      io::load_hf_weights(reloaded.trainer->model().params(), sharded);
      const Tensor& p = reloaded.trainer->model().params().flat_values();
      const Tensor& q = one.trainer->model().params().flat_values();
      EXPECT_EQ(std::memcmp(p.data<float>(), q.data<float>(),
                            static_cast<size_t>(p.numel()) * sizeof(float)),
                0);
    }
  }
}

}  // namespace
}  // namespace trident::train
