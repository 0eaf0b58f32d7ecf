#pragma once
// Training checkpoints: one HDF5 file per save (docs/checkpoint-format.md), written collectively
// through MPI-IO. Every tensor is stored under its Hugging Face name with its GLOBAL shape, and
// every rank reads or writes only its own hyperslab, so a checkpoint written under one layout
// (pp, dp, tp, ep, etp, zero1) loads under any other: resharding is just a different selection.
//
// A save goes to <dir>/step_<N>.h5.tmp and is renamed to step_<N>.h5 only after every rank has
// closed the file and the checksums are stored, so a crash mid-save never hides the previous
// checkpoint, and a file named step_<N>.h5 is complete by construction.
#include <mpi.h>

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "models/deepseek_v3/parameters.h"
#include "runtime/config/trident.pb.h"

namespace trident::io {

class CollectiveWatchdog;

// Format 2 adds the run id and a checksum over the root attributes (the stored config
// included); format 3 adds the trainer state (GRPO's, below). Format 1 files still load, with a
// warning that their metadata is unchecked.
inline constexpr int64_t kCheckpointFormatVersion = 3;
inline constexpr int64_t kOldestReadableCheckpointFormat = 1;

// The mesh a checkpoint was written under (informational: loading never needs it to match).
struct CheckpointLayout {
  int64_t pp = 1, dp = 1, tp = 1, ep = 1, etp = 1;
  bool zero1 = false;
};
CheckpointLayout layout_of(const config::TridentConfig& config);

// What a checkpoint records besides the tensors.
struct CheckpointState {
  int64_t step = 0;           // optimizer steps completed
  uint64_t seed = 0;          // the run's seed
  int64_t data_position = 0;  // the next step the data pipeline produces (resume point)
  std::string rng_state;      // opaque extra RNG state, empty if none (counter RNGs need none)
  config::TridentConfig config;
  CheckpointLayout layout;
  // The run that wrote it (checkpoint_claim.h): a run resumed from a checkpoint keeps its id.
  // Empty in format 1 files and in saves that name no run.
  std::string run_id;
  // What the trainer that wrote the file needs besides weights, moments and step, as JSON text
  // it alone interprets ("" for pretraining, whose state is all above). GRPO stores its kind,
  // optimizer update count and skipped steps here (runtime/train/grpo/grpo_checkpoint.h), so
  // that a pretraining resume can refuse a GRPO file and the other way round. Empty in format
  // 1 and 2 files.
  std::string trainer_state;
};

// One contiguous run of AdamW moments: element i of exp_avg / exp_avg_sq is flat element
// flat_begin + i of the store. The moments are f32 or bf16 (train.moment_dtype); files always
// hold fp32, so a run resumes with either.
struct MomentRange {
  void* exp_avg = nullptr;
  void* exp_avg_sq = nullptr;
  int64_t flat_begin = 0;
  int64_t flat_end = 0;
  DType dtype = DType::F32;

  // The part [begin, end) of the flat elements (within this range).
  MomentRange part(int64_t begin, int64_t end) const;
};

// The AdamW moments this rank holds, aligned with the store's flat value buffer: element i of
// exp_avg / exp_avg_sq is flat element flat_begin + i of the store. Without ZeRO-1 that is the
// whole buffer (flat_begin 0, flat_end store.numel()); under ZeRO-1 it is the rank's range.
// A ZeRO-1 shard is generally not one range (a rank owns one block of every gradient bucket,
// and with expert parallelism a second shard over the experts): `extra` then lists the further
// ranges, each with its own buffers. All ranges must be disjoint.
// Null pointers: no optimizer state (save writes none; load leaves nothing to fill).
struct MomentsView {
  void* exp_avg = nullptr;
  void* exp_avg_sq = nullptr;
  int64_t flat_begin = 0;
  int64_t flat_end = 0;
  std::vector<MomentRange> extra;
  DType dtype = DType::F32;  // of exp_avg / exp_avg_sq

  // Every non-empty range (the first one and `extra`), sorted by flat_begin.
  std::vector<MomentRange> ranges() const;
  bool empty() const { return ranges().empty(); }
  // The moment tensors of the whole store (f32 or bf16).
  static MomentsView whole(const Tensor& exp_avg, const Tensor& exp_avg_sq) {
    return MomentsView{exp_avg.raw_data(), exp_avg_sq.raw_data(), 0, exp_avg.numel(), {},
                       exp_avg.dtype()};
  }
  static MomentsView of_ranges(std::vector<MomentRange> ranges) {
    MomentsView view;
    view.extra = std::move(ranges);
    return view;
  }
};

struct CheckpointSaveOptions {
  // Keep this run's newest keep_last step_*.h5 in dir after a save (0: keep all). Files of
  // other runs are never removed, nor is the file just written.
  int64_t keep_last = 0;
  // Stored in the file (overrides state.run_id when set); a save never replaces a step file
  // that another run wrote.
  std::string run_id;
  // Watches each collective step of the save (collective_watchdog.h): a rank that died
  // mid-save is named and the job ended instead of the others waiting forever. Null: none.
  CollectiveWatchdog* watchdog = nullptr;
  // Called on every rank after the file is complete and closed, just before the rename
  // (fault-injection tests kill a rank here).
  std::function<void()> before_commit;
  // A second set of weights of the same model and layout (every rank holds the same slices
  // of it as of `store`), written under /reference/weights: GRPO's frozen reference model.
  // Null: none.
  const models::ParameterStore* reference = nullptr;
};

// Collective over `comm` (every rank of the job, each passing its own store and moments).
// Writes <dir>/step_<step>.h5 and returns its path (on every rank). Refuses (UserError on every
// rank, nothing written) a model with a NaN or infinite value, naming the tensor and the rank.
// A save that cannot complete (disk full, file size limit, permission) throws the same
// UserError on every rank, saying why, after removing its .tmp file: the checkpoints already in
// dir are never touched before the new one is complete.
// Cost: one collective write of the model plus, on rank 0, one re-read of the file to compute
// the per-dataset CRC-32C (streamed in 64 MiB blocks).
std::string save_checkpoint(const std::string& dir, const CheckpointState& state,
                            const models::ParameterStore& store, const MomentsView& moments,
                            MPI_Comm comm, const CheckpointSaveOptions& options = {});

struct LoadedCheckpoint {
  CheckpointState state;          // config parsed from the stored textproto, layout as written
  bool optimizer_loaded = false;  // false: the file has no optimizer state (moments zeroed)
  bool reference_loaded = false;  // a reference store was given and the file has one
};

// Collective over `comm`. Fills every parameter the store holds (its slice of each global
// tensor) and the moments' flat range. A tensor missing from the file, or stored with another
// global shape, is a UserError naming it. Checksums are not verified here (find_latest_valid
// and verify_checkpoint do that). With `reference`, its slices are filled from
// /reference/weights when the file has them (reference_loaded) and left alone otherwise.
LoadedCheckpoint load_checkpoint(const std::string& path, models::ParameterStore& store,
                                 const MomentsView& moments, MPI_Comm comm,
                                 models::ParameterStore* reference = nullptr);

// Reads the attributes only (no tensors); serial, any rank.
CheckpointState read_checkpoint_state(const std::string& path);

struct CheckpointCheck {
  bool valid = false;
  std::string reason;  // why not: "not an HDF5 file", "truncated or damaged ...", "checksum ..."
};
// Serial: opens the file, checks the attributes and recomputes every dataset's CRC-32C.
CheckpointCheck verify_checkpoint(const std::string& path);

struct RefusedCheckpoint {
  std::string path;
  std::string reason;
};
struct LatestCheckpoint {
  std::string path;  // empty: no valid checkpoint in dir
  int64_t step = -1;
  std::vector<RefusedCheckpoint> refused;  // newer files that failed verification, newest first
};
// --resume auto: the newest step_<N>.h5 in dir that verifies; *.tmp files are never considered.
// Serial (run it on one rank and broadcast the path; it reads every byte of what it checks).
LatestCheckpoint find_latest_valid(const std::string& dir);
// The same for a job: rank 0 verifies, every rank gets the path and step (refusals are
// logged and returned on rank 0 only). Collective over `comm`.
LatestCheckpoint find_latest_valid(const std::string& dir, MPI_Comm comm);

// Checkpoint file name of a step: "step_<N>.h5".
std::string checkpoint_file_name(int64_t step);
// Step files in dir (complete ones only), sorted by step ascending.
struct CheckpointFile {
  int64_t step = 0;
  std::string path;
};
std::vector<CheckpointFile> list_checkpoints(const std::string& dir);

}  // namespace trident::io
