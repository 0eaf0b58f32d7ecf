#include "runtime/train/trainer_checkpoint.h"

#include <filesystem>

#include "runtime/core/error.h"
#include "runtime/core/logging.h"
#include "runtime/train/optimizer_moments.h"

namespace trident::train {

io::CheckpointState trainer_state(const Trainer& trainer) {
  io::CheckpointState state;
  state.step = trainer.step_index();
  state.seed = trainer.config().train().seed();
  state.data_position = trainer.step_index() + 1;  // the next step the sampler serves
  state.config = trainer.config();
  state.layout = io::layout_of(trainer.config());
  return state;
}

std::string save_trainer_checkpoint(Trainer& trainer, const std::string& dir, MPI_Comm comm,
                                    const io::CheckpointSaveOptions& options) {
  const models::ParameterStore& store = trainer.model().params();
  return io::save_checkpoint(dir, trainer_state(trainer), store,
                             moments_to_save(trainer.optimizer(), store).view(), comm, options);
}

io::LoadedCheckpoint load_trainer_checkpoint(Trainer& trainer, const std::string& path,
                                             MPI_Comm comm) {
  models::ParameterStore& store = trainer.model().params();
  HostMoments moments = optimizer_moments(trainer.optimizer(), store);
  io::LoadedCheckpoint loaded = io::load_checkpoint(path, store, moments.view(), comm);
  moments.write_back();
  const io::CheckpointState& state = loaded.state;
  TRIDENT_USER_CHECK(state.trainer_state.empty(), "checkpoint '", path,
                     "' was written by another trainer (", state.trainer_state,
                     "): resume it with the command that wrote it (trident grpo --resume), or ",
                     "start pretraining from its weights with --init-hf after `trident convert`");
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
