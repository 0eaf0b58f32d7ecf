#include "runtime/train/grpo/grpo_checkpoint.h"

#include <mpi.h>

#include <filesystem>

#include "runtime/core/error.h"
#include "runtime/core/logging.h"
#include "runtime/io/checkpoint.h"

namespace trident::train::grpo {

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

void load_policy_weights(const std::string& path, models::DeepSeekV3Model& policy,
                         MPI_Comm comm) {
  io::load_checkpoint(path, policy.params(), io::MomentsView{}, comm);
}

std::string save_policy_checkpoint(const config::TridentConfig& config,
                                   const models::DeepSeekV3Model& policy, int64_t step,
                                   MPI_Comm comm, const std::string& run_id,
                                   io::CollectiveWatchdog* watchdog) {
  const config::CheckpointConfig& checkpoint = config.checkpoint();
  if (checkpoint.dir().empty()) return "";
  io::CheckpointState state;
  state.step = step;
  state.seed = config.train().seed();
  state.data_position = step + 1;
  state.config = config;
  *state.config.mutable_model() = policy.config();
  state.layout = io::layout_of(config);
  io::CheckpointSaveOptions options;
  options.keep_last = checkpoint.keep_last();
  options.run_id = run_id;
  options.watchdog = watchdog;
  return io::save_checkpoint(checkpoint.dir(), state, policy.params(), io::MomentsView{},
                             comm, options);
}

}  // namespace trident::train::grpo
