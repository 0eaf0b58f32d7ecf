#include "runtime/train/trainer_checkpoint.h"

#include <algorithm>
#include <filesystem>

#include "runtime/core/error.h"
#include "runtime/core/logging.h"

namespace trident::train {

namespace {

void add_shard(parallel::dp::Zero1State* state, std::vector<io::MomentRange>& ranges) {
  if (state == nullptr) return;
  float* m = state->exp_avg().data<float>();
  float* v = state->exp_avg_sq().data<float>();
  for (const parallel::dp::ShardSegment& s : state->segments()) {
    if (s.count <= 0) continue;
    ranges.push_back(
        {m + s.shard_offset, v + s.shard_offset, s.flat_offset, s.flat_offset + s.count});
  }
}

}  // namespace

io::MomentsView optimizer_moments(Trainer& trainer) {
  Optimizer& optimizer = trainer.optimizer();
  if (!optimizer.zero1()) {
    return io::MomentsView::whole(optimizer.exp_avg().data<float>(),
                                  optimizer.exp_avg_sq().data<float>(),
                                  trainer.model().params().numel());
  }
  std::vector<io::MomentRange> ranges;
  for (Optimizer::Group& group : optimizer.mutable_groups()) add_shard(group.zero1.get(), ranges);
  return io::MomentsView::of_ranges(std::move(ranges));
}

io::CheckpointState trainer_state(const Trainer& trainer) {
  io::CheckpointState state;
  state.step = trainer.step_index();
  state.seed = trainer.config().train().seed();
  state.data_position = trainer.step_index() + 1;  // the next step the sampler serves
  state.config = trainer.config();
  state.layout = io::layout_of(trainer.config());
  return state;
}

namespace {

// The moments to write. Under pipeline parallelism the last stage's rank may hold a copy of the
// embedding that follows stage 0's and is updated there (optimizer.h): its moments live on
// stage 0's rank (its dp group holds all of them under ZeRO-1); the last stage's rank has none
// under ZeRO-1 and unused zeros without it, which must not be written. Loading fills both
// copies' values.
io::MomentsView moments_to_save(Trainer& trainer) {
  io::MomentsView moments = optimizer_moments(trainer);
  const models::ParameterStore& store = trainer.model().params();
  const char* const embedding = "model.embed_tokens.weight";
  if (!trainer.optimizer().holds_embedding_copy() || !store.has(embedding)) return moments;
  const models::Parameter& copy = store.get(embedding);
  const int64_t lo = copy.offset;
  const int64_t hi = copy.offset + copy.value.numel();
  std::vector<io::MomentRange> kept;
  for (const io::MomentRange& r : moments.ranges()) {
    if (r.flat_begin < lo) {
      const int64_t end = std::min(r.flat_end, lo);
      kept.push_back({r.exp_avg, r.exp_avg_sq, r.flat_begin, end});
    }
    if (r.flat_end > hi) {
      const int64_t begin = std::max(r.flat_begin, hi);
      kept.push_back({r.exp_avg + (begin - r.flat_begin), r.exp_avg_sq + (begin - r.flat_begin),
                      begin, r.flat_end});
    }
  }
  return io::MomentsView::of_ranges(std::move(kept));
}

}  // namespace

std::string save_trainer_checkpoint(Trainer& trainer, const std::string& dir, MPI_Comm comm,
                                    const io::CheckpointSaveOptions& options) {
  return io::save_checkpoint(dir, trainer_state(trainer), trainer.model().params(),
                             moments_to_save(trainer), comm, options);
}

io::LoadedCheckpoint load_trainer_checkpoint(Trainer& trainer, const std::string& path,
                                             MPI_Comm comm) {
  models::ParameterStore& store = trainer.model().params();
  io::LoadedCheckpoint loaded = io::load_checkpoint(path, store, optimizer_moments(trainer), comm);
  const io::CheckpointState& state = loaded.state;
  TRIDENT_USER_CHECK(state.data_position == state.step + 1, "checkpoint '", path,
                     "': data_position ", state.data_position, " does not follow step ", state.step,
                     " (this trainer serves step s's rows at step s)");
  const auto& saved = state.config;
  const auto& now = trainer.config();
  if (saved.train().seed() != now.train().seed() ||
      saved.train().global_batch() != now.train().global_batch() ||
      saved.train().seq_len() != now.train().seq_len() ||
      saved.data().train_path() != now.data().train_path()) {
    TLOG_WARN("checkpoint '", path, "' was written with other data settings (train.seed, ",
              "train.global_batch, train.seq_len or data.train_path): the resumed run sees other ",
              "rows than the original would have");
  }
  if (!loaded.optimizer_loaded) {
    TLOG_WARN("checkpoint '", path, "' holds no optimizer state: AdamW moments start at zero");
  }
  trainer.set_step(state.step);
  // The ZeRO-1 master weights are this rank's shard of the (fp32) weights just loaded.
  trainer.optimizer().reload_master_weights();
  const io::CheckpointLayout& l = state.layout;
  TLOG_INFO("resumed from ", path, " at step ", state.step, " (written by pp", l.pp, " dp", l.dp,
            " tp", l.tp, " ep", l.ep, " etp", l.etp, l.zero1 ? " zero1" : "", ")");
  return loaded;
}

std::string resolve_resume(const std::string& resume, const std::string& dir, MPI_Comm comm) {
  if (resume.empty()) return "";
  if (resume == "auto") {
    TRIDENT_USER_CHECK(!dir.empty(), "--resume auto (checkpoint.resume = \"auto\") needs ",
                       "checkpoint.dir (or --checkpoint-dir) to search");
    const io::LatestCheckpoint latest = io::find_latest_valid(dir, comm);
    if (latest.path.empty()) {
      TLOG_INFO("no valid checkpoint in ", dir, ": starting from scratch");
    }
    return latest.path;
  }
  TRIDENT_USER_CHECK(std::filesystem::exists(resume), "--resume / checkpoint.resume: '", resume,
                     "' does not exist (give a step_<N>.h5 file, or \"auto\" to take the newest "
                     "valid one in checkpoint.dir)");
  // A named file is verified too (rank 0 reads it once); a damaged one is refused, not loaded.
  int rank = 0;
  MPI_Comm_rank(comm, &rank);
  std::string reason;
  if (rank == 0) {
    const io::CheckpointCheck check = io::verify_checkpoint(resume);
    if (!check.valid) reason = check.reason.empty() ? "invalid" : check.reason;
  }
  int length = static_cast<int>(reason.size());
  TRIDENT_CHECK_MPI(MPI_Bcast(&length, 1, MPI_INT, 0, comm));
  reason.resize(static_cast<size_t>(length));
  if (length > 0) TRIDENT_CHECK_MPI(MPI_Bcast(reason.data(), length, MPI_CHAR, 0, comm));
  TRIDENT_USER_CHECK(reason.empty(), "--resume / checkpoint.resume: refusing '", resume,
                     "': ", reason,
                     " (\"auto\" falls back to the newest valid checkpoint in "
                     "checkpoint.dir)");
  return resume;
}

}  // namespace trident::train
