#include "runtime/train/grpo/grpo_checkpoint.h"

#include <mpi.h>

#include <filesystem>
#include <nlohmann/json.hpp>

#include "runtime/config/config.h"
#include "runtime/core/error.h"
#include "runtime/core/logging.h"
#include "runtime/io/checkpoint.h"
#include "runtime/io/hf_weights.h"
#include "runtime/train/optimizer_moments.h"

namespace trident::train::grpo {

namespace {

constexpr const char* kTrainerName = "grpo";

std::string trainer_state_text(const GrpoCheckpointState& state) {
  return nlohmann::json{{"trainer", kTrainerName},
                        {"optimizer_steps", state.trainer.optimizer_steps},
                        {"skipped_steps", state.trainer.skipped_steps},
                        {"eval_accuracy_before", state.eval_accuracy_before},
                        {"eval_format_rate_before", state.eval_format_rate_before}}
      .dump();
}

// The counters of a GRPO file's trainer_state; UserError naming the file for anything else.
GrpoCheckpointState parse_trainer_state(const std::string& path, const io::CheckpointState& file) {
  const char* const from_init = ": start GRPO from its weights with --init instead of resuming";
  TRIDENT_USER_CHECK(!file.trainer_state.empty(), "--resume: checkpoint '", path,
                     "' was not written by trident grpo (it has no GRPO state, so it comes from ",
                     "pretraining or SFT, or from an older Trident)", from_init);
  GrpoCheckpointState state;
  state.step = file.step;
  try {
    const nlohmann::json j = nlohmann::json::parse(file.trainer_state);
    TRIDENT_USER_CHECK(j.value("trainer", std::string()) == kTrainerName, "--resume: checkpoint '",
                       path, "' was written by trainer '", j.value("trainer", std::string("?")),
                       "', not trident grpo", from_init);
    state.trainer.optimizer_steps = j.at("optimizer_steps").get<int64_t>();
    state.trainer.skipped_steps = j.at("skipped_steps").get<int64_t>();
    state.eval_accuracy_before = j.at("eval_accuracy_before").get<double>();
    state.eval_format_rate_before =
        j.value("eval_format_rate_before", -1.0);  // older files lack it
  } catch (const nlohmann::json::exception& e) {
    TRIDENT_USER_FAIL("--resume: checkpoint '", path, "' has an unreadable GRPO state (", e.what(),
                      "): ", file.trainer_state);
  }
  TRIDENT_USER_CHECK(state.trainer.optimizer_steps >= 0 && state.trainer.skipped_steps >= 0,
                     "--resume: checkpoint '", path,
                     "' has negative GRPO counters: ", file.trainer_state);
  return state;
}

// Settings that decide which prompts and samples a step sees: a resumed run with other values
// is a different run, which is allowed but said.
void warn_on_changed_settings(const std::string& path, const config::TridentConfig& saved,
                              const config::TridentConfig& now) {
  const auto& a = saved.grpo();
  const auto& b = now.grpo();
  if (saved.train().seed() != now.train().seed() || a.prompts_per_step() != b.prompts_per_step() ||
      a.group_size() != b.group_size() || a.max_new_tokens() != b.max_new_tokens() ||
      a.temperature() != b.temperature() || a.lr() != b.lr() || a.beta() != b.beta() ||
      a.updates_per_batch() != b.updates_per_batch()) {
    TLOG_WARN("checkpoint '", path, "' was written with other GRPO settings (train.seed, ",
              "grpo.prompts_per_step, group_size, max_new_tokens, temperature, lr, beta or ",
              "updates_per_batch): the resumed run is not the run that wrote it");
  }
}

}  // namespace

bool is_trident_checkpoint(const std::string& path) {
  std::error_code ec;
  const bool named_h5 = path.size() > 3 && path.compare(path.size() - 3, 3, ".h5") == 0;
  return named_h5 || std::filesystem::is_regular_file(path, ec);
}

config::ModelConfig checkpoint_model_config(const std::string& path) {
  const io::CheckpointCheck check = io::verify_checkpoint(path);
  TRIDENT_USER_CHECK(check.valid, "--init ", path, ": not a usable Trident checkpoint (",
                     check.reason, "); give a step_<N>.h5 file or an HF directory");
  return io::read_checkpoint_state(path).config.model();
}

config::ModelConfig init_model_config(const std::string& init) {
  return is_trident_checkpoint(init) ? checkpoint_model_config(init)
                                     : config::import_hf_config(init + "/config.json");
}

std::string load_init_weights(const std::string& init, models::DeepSeekV3Model& model,
                              MPI_Comm comm) {
  if (is_trident_checkpoint(init)) {
    load_policy_weights(init, model, comm);
    return "checkpoint " + init;
  }
  io::load_hf_weights(model.params(), init);  // each rank reads its slices
  return "HF weights in " + init;
}

void load_policy_weights(const std::string& path, models::DeepSeekV3Model& policy,
                         MPI_Comm comm) {
  io::load_checkpoint(path, policy.params(), io::MomentsView{}, comm);
}

std::string save_grpo_checkpoint(const config::TridentConfig& config, GrpoTrainer& trainer,
                                 const GrpoCheckpointState& state, MPI_Comm comm,
                                 const std::string& run_id, io::CollectiveWatchdog* watchdog) {
  const config::CheckpointConfig& checkpoint = config.checkpoint();
  if (checkpoint.dir().empty()) return "";
  const models::ParameterStore& store = trainer.policy().params();
  io::CheckpointState file;
  file.step = state.step;
  file.seed = config.train().seed();
  file.data_position = state.step + 1;  // the next step's prompts
  file.config = config;
  *file.config.mutable_model() = trainer.policy().config();
  file.layout = io::layout_of(config);
  file.trainer_state = trainer_state_text(state);
  io::CheckpointSaveOptions options;
  options.keep_last = checkpoint.keep_last();
  options.run_id = run_id;
  options.watchdog = watchdog;
  if (trainer.reference() != nullptr) options.reference = &trainer.reference()->params();
  return io::save_checkpoint(checkpoint.dir(), file, store,
                             moments_to_save(trainer.optimizer(), store).view(), comm, options);
}

GrpoCheckpointState load_grpo_checkpoint(const std::string& path,
                                         const config::TridentConfig& config, GrpoTrainer& trainer,
                                         MPI_Comm comm) {
  // The kind of file is checked before any tensor is read.
  const io::CheckpointState header = io::read_checkpoint_state(path);
  GrpoCheckpointState state = parse_trainer_state(path, header);
  models::ParameterStore& store = trainer.policy().params();
  models::ParameterStore* reference =
      trainer.reference() != nullptr ? &trainer.reference()->params() : nullptr;
  HostMoments moments = optimizer_moments(trainer.optimizer(), store);
  const io::LoadedCheckpoint loaded =
      io::load_checkpoint(path, store, moments.view(), comm, reference);
  moments.write_back();
  TRIDENT_USER_CHECK(reference == nullptr || loaded.reference_loaded, "--resume: checkpoint '",
                     path, "' holds no reference model (written with grpo.beta = 0), but this run ",
                     "has grpo.beta = ", config.grpo().beta(),
                     " and needs the one its KL is measured against: resume with grpo.beta = 0, ",
                     "or start a new run from its weights with --init");
  if (!loaded.optimizer_loaded) {
    TLOG_WARN("checkpoint '", path, "' holds no optimizer state: AdamW moments start at zero");
  }
  warn_on_changed_settings(path, loaded.state.config, config);
  trainer.restore(state.trainer);
  const io::CheckpointLayout& l = loaded.state.layout;
  TLOG_INFO("resumed GRPO from ", path, " after step ", state.step, " (written by pp", l.pp, " dp",
            l.dp, " tp", l.tp, " ep", l.ep, l.zero1 ? " zero1" : "", ")");
  return state;
}

}  // namespace trident::train::grpo
