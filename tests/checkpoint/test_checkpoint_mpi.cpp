// Checkpoints under real MPI (run with 4 ranks): sharded saves load bit-exactly under other
// layouts, replicas are written once, moments survive ZeRO-1 ranges, damage is detected.
#include <gtest/gtest.h>
#include <hdf5.h>
#include <mpi.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <thread>

#include "tests/checkpoint/checkpoint_test_util.h"
#include "tests/support/shared_temp_dir.h"

namespace trident::testing {
namespace {

namespace fs = std::filesystem;

int world_rank() {
  int rank = 0;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  return rank;
}

// Communicator of the first `n` world ranks (MPI_COMM_NULL on the others).
MPI_Comm first_ranks(int n) {
  MPI_Comm comm = MPI_COMM_NULL;
  MPI_Comm_split(MPI_COMM_WORLD, world_rank() < n ? 0 : MPI_UNDEFINED, world_rank(), &comm);
  return comm;
}

io::CheckpointState state_for(const config::TridentConfig& config, int64_t step) {
  io::CheckpointState state;
  state.step = step;
  state.seed = 1234;
  state.data_position = step + 1;
  state.rng_state = "rng:" + std::to_string(step);
  state.config = config;
  state.layout = io::layout_of(config);
  return state;
}

struct Moments {
  std::vector<float> m, v;
  int64_t begin = 0, end = 0;
  io::MomentsView view() { return io::MomentsView{m.data(), v.data(), begin, end, {}}; }
};

Moments moments_for(const models::ParameterStore& store, int64_t begin, int64_t end) {
  return Moments{expected_moments(store, 0, begin, end), expected_moments(store, 1, begin, end),
                 begin, end};
}

void expect_matches_fresh(const models::ParameterRegistry& registry, const Split& split,
                          const models::ParameterStore& loaded, const Moments& moments) {
  const auto fresh = make_store(registry, split, 1234);
  ASSERT_EQ(fresh->numel(), loaded.numel());
  EXPECT_TRUE(same_bits(fresh->flat_values().data<float>(), loaded.flat_values().data<float>(),
                        static_cast<size_t>(fresh->numel())));
  const auto m = expected_moments(*fresh, 0, moments.begin, moments.end);
  const auto v = expected_moments(*fresh, 1, moments.begin, moments.end);
  EXPECT_TRUE(same_bits(m.data(), moments.m.data(), m.size()));
  EXPECT_TRUE(same_bits(v.data(), moments.v.data(), v.size()));
}

TEST(CheckpointMpi, TpEpShardedSaveLoadsIntoOneAndFourRanks) {
  config::TridentConfig config = tiny_config();
  config.mutable_parallel()->set_tp(2);
  config.mutable_parallel()->set_ep(2);
  const models::ParameterRegistry registry(config.model());
  const SharedTempDir dir;
  const int rank = world_rank();
  std::string path;
  if (MPI_Comm comm = first_ranks(2); comm != MPI_COMM_NULL) {
    const Split split{rank, 2, rank, 2};
    auto store = make_store(registry, split, 1234);
    Moments moments = moments_for(*store, 0, store->numel());
    path = io::save_checkpoint(dir.path(), state_for(config, 7), *store, moments.view(), comm);
    MPI_Comm_free(&comm);
  }
  MPI_Barrier(MPI_COMM_WORLD);
  path = dir / "step_7.h5";
  ASSERT_TRUE(fs::exists(path));

  if (rank == 0) {  // one rank, everything whole
    auto store = make_store(registry, Split{}, 99);
    Moments moments{std::vector<float>(static_cast<size_t>(store->numel()), 7.0f),
                    std::vector<float>(static_cast<size_t>(store->numel()), 7.0f), 0,
                    store->numel()};
    const auto loaded = io::load_checkpoint(path, *store, moments.view(), MPI_COMM_SELF);
    EXPECT_EQ(loaded.state.step, 7);
    EXPECT_EQ(loaded.state.seed, 1234u);
    EXPECT_EQ(loaded.state.data_position, 8);
    EXPECT_EQ(loaded.state.rng_state, "rng:7");
    EXPECT_EQ(loaded.state.layout.tp, 2);
    EXPECT_EQ(loaded.state.config.model().hidden_size(), config.model().hidden_size());
    EXPECT_TRUE(loaded.optimizer_loaded);
    expect_matches_fresh(registry, Split{}, *store, moments);
  }
  {  // four ranks, tp 4 and ep 4
    const Split split{rank, 4, rank, 4};
    auto store = make_store(registry, split, 99);
    Moments moments{std::vector<float>(static_cast<size_t>(store->numel())),
                    std::vector<float>(static_cast<size_t>(store->numel())), 0, store->numel()};
    io::load_checkpoint(path, *store, moments.view(), MPI_COMM_WORLD);
    expect_matches_fresh(registry, split, *store, moments);
  }
  EXPECT_TRUE(io::verify_checkpoint(path).valid);
  const io::LatestCheckpoint latest = io::find_latest_valid(dir.path(), MPI_COMM_WORLD);
  EXPECT_EQ(latest.step, 7);
  EXPECT_EQ(latest.path, path);
}

// The tiny model on four data-parallel replicas with ZeRO-1.
config::TridentConfig four_zero1_replicas() {
  config::TridentConfig config = tiny_config();
  config.mutable_parallel()->set_dp(4);
  config.mutable_parallel()->set_zero1(true);
  return config;
}

// The quarter of the moments of `store` that replica `rank` of four holds under ZeRO-1.
Moments zero1_quarter(const models::ParameterStore& store, int rank) {
  const int64_t quarter = (store.numel() + 3) / 4;
  const int64_t begin = std::min(store.numel(), rank * quarter);
  return moments_for(store, begin, std::min(store.numel(), begin + quarter));
}

TEST(CheckpointMpi, ReplicasWithZero1RangesRoundTripMoments) {
  // Four data-parallel replicas, each holding a quarter of the moments (ZeRO-1).
  const config::TridentConfig config = four_zero1_replicas();
  const models::ParameterRegistry registry(config.model());
  const SharedTempDir dir;
  const int rank = world_rank();
  auto store = make_store(registry, Split{}, 1234);
  Moments moments = zero1_quarter(*store, rank);
  const std::string path =
      io::save_checkpoint(dir.path(), state_for(config, 3), *store, moments.view(), MPI_COMM_WORLD);
  // Reload into a 2-rank split with half ranges of a TP=2 store.
  MPI_Comm comm = first_ranks(2);
  if (comm != MPI_COMM_NULL) {
    const Split split{rank, 2, 0, 1};
    auto sharded = make_store(registry, split, 5);
    const int64_t half = sharded->numel() / 2;
    Moments loaded{std::vector<float>(static_cast<size_t>(half)),
                   std::vector<float>(static_cast<size_t>(half)), 0, half};
    io::load_checkpoint(path, *sharded, loaded.view(), comm);
    expect_matches_fresh(registry, split, *sharded, loaded);
    MPI_Comm_free(&comm);
  }
  if (rank == 0) {
    EXPECT_TRUE(io::verify_checkpoint(path).valid);
  }
}

// A save while another thread polls MPI without pause, as the watchdog's and communicators'
// arrival probes do every 20 ms. Its ctest entry (checkpoint_mpi_progress_thread_np4) sets
// Open MPI's knobs that make ompio's collective writer use its asynchronous path on every
// aggregation cycle; with ompio chosen (OMPI_MCA_io=ompio) the poller then crashes inside ompio's
// progress callback (docs/checkpoint-format.md "MPI-IO and progress threads"), with the MPI-IO
// component MpiSession picks it does not.
TEST(CheckpointMpi, SavesWhileAnotherThreadPollsMpi) {
  const config::TridentConfig config = four_zero1_replicas();
  const models::ParameterRegistry registry(config.model());
  const SharedTempDir dir;
  const int rank = world_rank();
  auto store = make_store(registry, Split{}, 1234);
  Moments moments = zero1_quarter(*store, rank);

  MPI_Comm polled = MPI_COMM_NULL;
  MPI_Comm_dup(MPI_COMM_WORLD, &polled);
  std::atomic<bool> stop{false};
  std::thread poller([&] {
    int64_t word = 0;
    MPI_Request request = MPI_REQUEST_NULL;
    MPI_Irecv(&word, 1, MPI_INT64_T, MPI_ANY_SOURCE, 0, polled, &request);
    while (!stop.load()) {
      int arrived = 0;
      MPI_Test(&request, &arrived, MPI_STATUS_IGNORE);
    }
    MPI_Cancel(&request);
    MPI_Wait(&request, MPI_STATUS_IGNORE);
  });
  std::string path;
  for (int64_t step = 1; step <= 8; ++step) {
    path = io::save_checkpoint(dir.path(), state_for(config, step), *store, moments.view(),
                               MPI_COMM_WORLD);
  }
  stop = true;
  poller.join();
  MPI_Comm_free(&polled);
  if (rank == 0) {
    EXPECT_TRUE(io::verify_checkpoint(path).valid);
  }
}

// What the checks that rank 0 runs alone save and load: the tiny model whole, with its values
// from seed 1234, and a fresh directory.
struct OneRankCheckpoint {
  const SharedTempDir dir;
  const config::TridentConfig config = tiny_config();
  const models::ParameterRegistry registry{config.model()};
  const std::unique_ptr<models::ParameterStore> store = make_store(registry, Split{}, 1234);
};

TEST(CheckpointMpi, SingleRankRoundTripIsBitExact) {
  const OneRankCheckpoint setup;  // on every rank: making and removing `dir` is collective
  if (world_rank() != 0) return;
  const auto& [dir, config, registry, store] = setup;
  // Values that are not the initial ones (a trained model).
  float* values = store->flat_values().data<float>();
  for (int64_t i = 0; i < store->numel(); ++i)
    values[i] = values[i] * 1.5f + 1e-3f * static_cast<float>(i % 17);
  Moments moments = moments_for(*store, 0, store->numel());
  const std::string path =
      io::save_checkpoint(dir.path(), state_for(config, 11), *store, moments.view(), MPI_COMM_SELF);
  auto reloaded = make_store(registry, Split{}, 1);
  Moments back{std::vector<float>(moments.m.size()), std::vector<float>(moments.v.size()), 0,
               store->numel()};
  io::load_checkpoint(path, *reloaded, back.view(), MPI_COMM_SELF);
  EXPECT_TRUE(same_bits(values, reloaded->flat_values().data<float>(),
                        static_cast<size_t>(store->numel())));
  EXPECT_TRUE(same_bits(moments.m.data(), back.m.data(), back.m.size()));
  EXPECT_TRUE(same_bits(moments.v.data(), back.v.data(), back.v.size()));
}

// Byte offset of a weight dataset's data in the file (contiguous layout).
uint64_t data_offset(const std::string& path, const std::string& name) {
  const hid_t file = H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT);
  const hid_t dataset = H5Dopen2(file, ("/weights/" + name).c_str(), H5P_DEFAULT);
  const haddr_t offset = H5Dget_offset(dataset);
  H5Dclose(dataset);
  H5Fclose(file);
  return offset;
}

TEST(CheckpointMpi, DamageIsDetectedAndLatestValidFallsBack) {
  const OneRankCheckpoint setup;  // on every rank: making and removing `dir` is collective
  if (world_rank() != 0) return;
  const auto& [dir, config, registry, store] = setup;
  Moments moments = moments_for(*store, 0, store->numel());
  io::CheckpointSaveOptions options;
  options.keep_last = 4;
  for (int64_t step = 1; step <= 5; ++step) {
    io::save_checkpoint(dir.path(), state_for(config, step), *store, moments.view(), MPI_COMM_SELF,
                        options);
  }
  EXPECT_FALSE(fs::exists(dir / "step_1.h5")) << "keep_last 4 keeps steps 2..5";
  EXPECT_TRUE(fs::exists(dir / "step_2.h5"));
  // step 5: flip bytes inside a tensor's data.
  {
    const uint64_t offset = data_offset(dir / "step_5.h5", "model.embed_tokens.weight");
    std::fstream file(dir / "step_5.h5", std::ios::in | std::ios::out | std::ios::binary);
    file.seekg(static_cast<std::streamoff>(offset + 40));
    char bytes[4];
    file.read(bytes, 4);
    for (char& b : bytes) b = static_cast<char>(~b);
    file.seekp(static_cast<std::streamoff>(offset + 40));
    file.write(bytes, 4);
  }
  // step 4: truncated to half its size.
  fs::resize_file(dir / "step_4.h5", fs::file_size(dir / "step_4.h5") / 2);
  // step 3: not an HDF5 file at all.
  { std::ofstream(dir / "step_3.h5", std::ios::trunc) << "this is not a checkpoint\n"; }
  // step 6: a save that never completed.
  fs::copy_file(dir / "step_2.h5", dir / "step_6.h5.tmp");

  const io::CheckpointCheck corrupt = io::verify_checkpoint(dir / "step_5.h5");
  EXPECT_FALSE(corrupt.valid);
  EXPECT_NE(corrupt.reason.find("checksum mismatch in /weights/model.embed_tokens.weight"),
            std::string::npos)
      << corrupt.reason;
  const io::CheckpointCheck truncated = io::verify_checkpoint(dir / "step_4.h5");
  EXPECT_FALSE(truncated.valid);
  EXPECT_NE(truncated.reason.find("truncated"), std::string::npos) << truncated.reason;
  const io::CheckpointCheck garbage = io::verify_checkpoint(dir / "step_3.h5");
  EXPECT_NE(garbage.reason.find("not an HDF5 file"), std::string::npos) << garbage.reason;

  const io::LatestCheckpoint latest = io::find_latest_valid(dir.path());
  EXPECT_EQ(latest.step, 2);
  EXPECT_EQ(latest.path, dir / "step_2.h5");
  ASSERT_EQ(latest.refused.size(), 3u);
  EXPECT_EQ(latest.refused[0].path, dir / "step_5.h5");

  auto target = make_store(registry, Split{}, 1);
  EXPECT_THROW(io::load_checkpoint(dir / "step_4.h5", *target, io::MomentsView{}, MPI_COMM_SELF),
               Error);
  EXPECT_THROW(io::load_checkpoint(dir / "step_3.h5", *target, io::MomentsView{}, MPI_COMM_SELF),
               UserError);
}

TEST(CheckpointMpi, UnheldSlicesAndOtherModelsAreRefused) {
  config::TridentConfig config = tiny_config();
  const models::ParameterRegistry registry(config.model());
  const SharedTempDir dir;
  // Both ranks hold TP slice 0 of 2: half of every split tensor has no writer.
  auto store = make_store(registry, Split{0, 2, 0, 1}, 1234);
  EXPECT_THROW(io::save_checkpoint(dir.path(), state_for(config, 1), *store, io::MomentsView{},
                                   MPI_COMM_WORLD),
               Error);
  EXPECT_TRUE(io::list_checkpoints(dir.path()).empty());
  // A checkpoint of another model (other hidden size) names the first tensor that differs.
  auto whole = make_store(registry, Split{}, 1234);
  io::save_checkpoint(dir.path(), state_for(config, 2), *whole, io::MomentsView{}, MPI_COMM_WORLD);
  config::TridentConfig other = config;
  other.mutable_model()->set_hidden_size(64);
  const models::ParameterRegistry other_registry(other.model());
  auto target = make_store(other_registry, Split{}, 1);
  try {
    io::load_checkpoint(dir / "step_2.h5", *target, io::MomentsView{}, MPI_COMM_WORLD);
    ADD_FAILURE() << "loading a checkpoint of another model succeeded";
  } catch (const UserError& e) {
    EXPECT_NE(std::string(e.what()).find("model.embed_tokens.weight"), std::string::npos)
        << e.what();
    EXPECT_NE(std::string(e.what()).find("[256, 32]"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace trident::testing
