// Checkpoints of a whole Trainer under mpirun (1, 2 and 4 ranks).
//
// ExactResume: 20 steps straight against 10 steps, a save, a new Trainer (which first trains
// two steps of its own, so stale master weights or moments would show), a load and 10 more
// steps, in the same layout: losses, gradient norms and final weights bit for bit (one rank;
// dp2 with ZeRO-1; dp2·ep2 with ZeRO-1 over dp and over edp; dp4·ep2 and dp2·tp2 with ZeRO-1).
//
// ReshardingChain (4 ranks): dp4·ep2 with ZeRO-1 → dp2·tp2 with ZeRO-1 → one rank. After every
// save, the saving trainer's slices equal the file's tensors; after every load, the loading
// trainer's slices equal them too (bit for bit); the losses of every step and the final weights
// match an uninterrupted one-rank run within 1e-5 relative (fp32: the layouts sum in other
// orders), so the moments, re-split into other ZeRO-1 shards, were carried over.
//
// StopSignal: SIGTERM is recorded by the handler and agreed on over the job.
//
// AdamW eps 1e-6 as in tests/dp/test_mesh_training.cpp: it keeps cross-layout comparisons about
// the layout rather than round-off amplified by tiny denominators.
#include <gtest/gtest.h>
#include <mpi.h>
#include <unistd.h>

#include <cmath>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "parallel/comm/mpi_backend.h"
#include "parallel/mesh.h"
#include "runtime/config/config.h"
#include "runtime/train/data_setup.h"
#include "runtime/train/stop_signal.h"
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
      config,
      {"train.steps=20", "train.global_batch=8", "train.micro_batch=2", "train.grad_clip=0.5",
       "train.aux_loss_alpha=0.001", "train.bias_update_speed=0.001", "train.mtp_loss_weight=0.3",
       "train.adam_eps=1e-6", "train.lr=1e-3", "train.min_lr=1e-4", "train.warmup_steps=3"});
  return config;
}

// A layout over the whole job (dp · tp = world size), or one rank per process (`alone`).
struct Layout {
  int dp = 1;
  int tp = 1;
  int ep = 1;
  bool zero1 = false;
  bool alone = false;
  std::string name() const {
    if (alone) return "one rank";
    return "dp" + std::to_string(dp) + (tp > 1 ? "·tp" + std::to_string(tp) : "") +
           (ep > 1 ? "·ep" + std::to_string(ep) : "") + (zero1 ? " zero1" : "");
  }
  MPI_Comm comm() const { return alone ? MPI_COMM_SELF : MPI_COMM_WORLD; }
};

// A trainer and the communicators it runs on (which must outlive it).
struct TrainerRun {
  std::unique_ptr<parallel::Mesh> mesh;
  std::unique_ptr<Trainer> trainer;
};

TrainerRun make_run(const Layout& layout) {
  config::TridentConfig config = base_config();
  TrainerRun run;
  if (layout.alone) {
    run.trainer = std::make_unique<Trainer>(config, make_train_sampler(config));
    return run;
  }
  config.mutable_parallel()->set_dp(layout.dp);
  config.mutable_parallel()->set_tp(layout.tp);
  config.mutable_parallel()->set_ep(layout.ep);
  config.mutable_parallel()->set_zero1(layout.zero1);
  parallel::MeshSizes sizes;
  sizes.dp = layout.dp;
  sizes.tp = layout.tp;
  sizes.ep = layout.ep;
  run.mesh = std::make_unique<parallel::Mesh>(sizes);
  TrainerOptions options;
  options.dp = std::make_shared<parallel::MpiBackend>(run.mesh->dp());
  if (layout.tp > 1) options.tp = std::make_shared<parallel::MpiBackend>(run.mesh->tp());
  if (layout.ep > 1) {
    options.ep = std::make_shared<parallel::MpiBackend>(run.mesh->ep());
    options.edp = std::make_shared<parallel::MpiBackend>(run.mesh->edp());
  }
  options.bucket_bytes = 4096;  // many buckets: every ZeRO-1 shard is many flat ranges
  run.trainer = std::make_unique<Trainer>(config, make_train_sampler(config), nullptr, options);
  return run;
}

// A fresh directory, the same on every rank; removed with the object.
struct SharedTempDir {
  std::string path;
  SharedTempDir() {
    char name[256] = {};
    if (world_rank() == 0) {
      std::snprintf(name, sizeof(name), "/tmp/trident_trainer_ckpt_XXXXXX");
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
    case 1:
      return {Layout{1, 1, 1, false}, Layout{1, 1, 1, true}};
    case 2:
      return {Layout{2, 1, 1, true}, Layout{2, 1, 2, true}};
    case 4:
      return {Layout{4, 1, 2, true}, Layout{2, 2, 1, true}};
    default:
      return {};
  }
}

TEST(TrainerCheckpoint, ExactResume) {
  const std::vector<Layout> layouts = exact_layouts();
  if (layouts.empty()) GTEST_SKIP() << "no layouts for " << world_size() << " ranks";
  for (const Layout& layout : layouts) {
    SCOPED_TRACE(layout.name());
    std::vector<StepMetrics> straight;
    std::vector<float> straight_weights;
    {
      TrainerRun run = make_run(layout);
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
      // A trainer that already trained (its ZeRO-1 master weights and moments hold other
      // values) must be fully overwritten by the load.
      second.trainer->step();
      second.trainer->step();
      const io::LoadedCheckpoint loaded =
          load_trainer_checkpoint(*second.trainer, path, layout.comm());
      EXPECT_TRUE(loaded.optimizer_loaded);
      EXPECT_EQ(loaded.state.step, kSteps / 2);
      EXPECT_EQ(second.trainer->step_index(), kSteps / 2);
      for (int64_t s = kSteps / 2; s < kSteps; ++s) resumed.push_back(second.trainer->step());
      const std::vector<float> weights = values_of(second.trainer->model().params().flat_values());
      ASSERT_EQ(weights.size(), straight_weights.size());
      EXPECT_EQ(
          std::memcmp(weights.data(), straight_weights.data(), weights.size() * sizeof(float)), 0)
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
}

// ---------------------------------------------------------------------------------------------

// The file's tensors, read whole into a one-rank model (weights only).
std::unique_ptr<Trainer> read_whole(const std::string& path) {
  TrainerRun run = make_run(Layout{1, 1, 1, false, true});
  io::load_checkpoint(path, run.trainer->model().params(), io::MomentsView{}, MPI_COMM_SELF);
  return std::move(run.trainer);
}

// Elements of `local` (a rank's slice of a parameter) that differ from the whole tensor.
int64_t slice_mismatches(const models::Parameter& local, const Tensor& whole) {
  const Shape& shape = local.spec->shape;
  const float* a = local.value.data<float>();
  const float* b = whole.data<float>();
  if (local.slice.dim < 0) {
    if (local.value.numel() != whole.numel()) return local.value.numel() + 1;
    int64_t bad = 0;
    for (int64_t i = 0; i < whole.numel(); ++i)
      bad += std::memcmp(&a[i], &b[i], sizeof(float)) != 0;
    return bad;
  }
  const size_t dim = static_cast<size_t>(local.slice.dim);
  int64_t outer = 1, inner = 1;
  for (size_t i = 0; i < dim; ++i) outer *= shape[i];
  for (size_t i = dim + 1; i < shape.size(); ++i) inner *= shape[i];
  const int64_t global_mid = shape[dim];
  const int64_t extent = local.slice.extent;
  int64_t bad = 0;
  for (int64_t o = 0; o < outer; ++o) {
    for (int64_t m = 0; m < extent; ++m) {
      const float* x = a + (o * extent + m) * inner;
      const float* y = b + (o * global_mid + local.slice.begin + m) * inner;
      bad += std::memcmp(x, y, static_cast<size_t>(inner) * sizeof(float)) != 0 ? 1 : 0;
    }
  }
  return bad;
}

// Number of parameters of this rank's store that differ from the checkpoint's tensors, summed
// over the world.
int64_t mismatched_parameters(const Trainer& trainer, const std::string& path) {
  const std::unique_ptr<Trainer> whole = read_whole(path);
  int64_t bad = 0;
  for (const models::Parameter& param : trainer.model().params().parameters()) {
    const Tensor& want = whole->model().params().get(param.spec->name).value;
    if (slice_mismatches(param, want) != 0) ++bad;
  }
  MPI_Allreduce(MPI_IN_PLACE, &bad, 1, MPI_INT64_T, MPI_SUM, MPI_COMM_WORLD);
  return bad;
}

TEST(TrainerCheckpoint, ReshardingChain) {
  if (world_size() != 4) GTEST_SKIP() << "the chain runs on 4 ranks";
  // The uninterrupted run, on one rank (every process runs it).
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
  };
  const std::vector<Link> chain = {{Layout{4, 1, 2, true}, 8},
                                   {Layout{2, 2, 1, true}, 14},
                                   {Layout{1, 1, 1, false, true}, kSteps}};
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
      EXPECT_EQ(mismatched_parameters(*run.trainer, path), 0) << "after loading " << path;
    }
    while (run.trainer->step_index() < link.until) got.push_back(run.trainer->step());
    if (link.until < kSteps) {
      // Every layout saves over the world: the one-rank link is last and does not save.
      path = save_trainer_checkpoint(*run.trainer, dir.path, link.layout.comm());
      EXPECT_EQ(mismatched_parameters(*run.trainer, path), 0) << "saved " << path;
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
        "[ chain dp4·ep2 zero1 → dp2·tp2 zero1 → one rank ] final loss %.9g (uninterrupted "
        "%.9g), final-weight relative error %.3g\n",
        got.back().loss, oracle.back().loss, error);
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
