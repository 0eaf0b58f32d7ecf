// Helper program for the checkpoint tests driven from Python:
//   sample DIR        (2 ranks) TP=2/EP=2 save of the tiny model with moments -> DIR/step_5.h5
//   kill DIR          (2 ranks) saves step 1, then rank 1 dies during the save of step 2
//   check-kill DIR    step 1 is the latest valid checkpoint, step 2 exists only as .tmp
//   hf DIR            Hugging Face export of the tiny model (seed 1234)
//   compare-hf A B    the two HF directories hold the same tensors, bit for bit
#include <mpi.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <filesystem>

#include "parallel/mpi_session.h"
#include "runtime/io/hf_weights.h"
#include "runtime/io/safetensors.h"
#include "tests/checkpoint/checkpoint_test_util.h"

namespace {

using namespace trident;

int fail(const std::string& message) {
  std::fprintf(stderr, "checkpoint_tool: %s\n", message.c_str());
  return 1;
}

io::CheckpointState state_for(const config::TridentConfig& config, int64_t step) {
  io::CheckpointState state;
  state.step = step;
  state.seed = 1234;
  state.data_position = step + 1;
  state.config = config;
  state.layout = io::layout_of(config);
  return state;
}

std::string sharded_save(const std::string& dir, int64_t step,
                         const io::CheckpointSaveOptions& options) {
  int rank = 0;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  config::TridentConfig config = testing::tiny_config();
  config.mutable_parallel()->set_tp(2);
  config.mutable_parallel()->set_ep(2);
  const models::ParameterRegistry registry(config.model());
  auto store = testing::make_store(registry, testing::Split{rank, 2, rank, 2}, 1234);
  std::vector<float> m = testing::expected_moments(*store, 0, 0, store->numel());
  std::vector<float> v = testing::expected_moments(*store, 1, 0, store->numel());
  return io::save_checkpoint(
      dir, state_for(config, step), *store,
      io::MomentsView::whole(Tensor::wrap(m.data(), {store->numel()}, DType::F32),
                             Tensor::wrap(v.data(), {store->numel()}, DType::F32)),
      MPI_COMM_WORLD, options);
}

int compare_hf(const std::string& a, const std::string& b) {
  const io::SafetensorsDirectory left(a), right(b);
  if (left.names() != right.names()) return fail("tensor names differ between " + a + " and " + b);
  for (const std::string& name : left.names()) {
    const Tensor x = left.load(name), y = right.load(name);
    if (x.shape() != y.shape() || x.dtype() != y.dtype() || x.nbytes() != y.nbytes() ||
        std::memcmp(x.raw_data(), y.raw_data(), x.nbytes()) != 0) {
      return fail("tensor " + name + " differs");
    }
  }
  std::printf("%zu tensors identical\n", left.names().size());
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  parallel::MpiSession session(&argc, &argv);
  if (argc < 3) return fail("usage: checkpoint_tool MODE DIR [DIR]");
  const std::string mode = argv[1], dir = argv[2];
  try {
    if (mode == "sample") {
      sharded_save(dir, 5, {});
      return 0;
    }
    if (mode == "kill") {
      sharded_save(dir, 1, {});
      io::CheckpointSaveOptions options;
      options.before_commit = [&session] {
        if (session.world_rank() == 1) _exit(3);  // dies with the file written but not renamed
      };
      sharded_save(dir, 2, options);
      return fail("the save of step 2 completed although rank 1 died");
    }
    if (mode == "check-kill") {
      const io::LatestCheckpoint latest = io::find_latest_valid(dir);
      if (latest.step != 1) return fail("latest valid step is " + std::to_string(latest.step));
      if (std::filesystem::exists(dir + "/step_2.h5"))
        return fail("step_2.h5 was renamed into place");
      if (!std::filesystem::exists(dir + "/step_2.h5.tmp"))
        return fail("no step_2.h5.tmp left behind");
      if (!latest.refused.empty()) return fail("the .tmp file was considered");
      std::printf("latest valid: %s\n", latest.path.c_str());
      return 0;
    }
    if (mode == "hf") {
      const config::TridentConfig config = testing::tiny_config();
      const models::ParameterRegistry registry(config.model());
      auto store = testing::make_store(registry, testing::Split{}, 1234);
      io::save_hf_weights(*store, dir);
      return 0;
    }
    if (mode == "compare-hf" && argc >= 4) return compare_hf(dir, argv[3]);
  } catch (const std::exception& e) {
    return fail(e.what());
  }
  return fail("unknown mode " + mode);
}
