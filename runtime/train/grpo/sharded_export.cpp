#include "runtime/train/grpo/sharded_export.h"

#include <filesystem>

#include "runtime/core/error.h"
#include "runtime/io/checkpoint.h"
#include "runtime/io/hf_weights.h"
#include "runtime/train/grpo/grpo_checkpoint.h"

namespace trident::train::grpo {

void save_policy_hf(const config::TridentConfig& config, const models::DeepSeekV3Model& policy,
                    const std::string& dir, bool sharded, bool primary, MPI_Comm job) {
  if (!sharded) {
    if (primary) io::save_hf_weights(policy.params(), dir);
    return;
  }
  const std::string scratch = dir + "/.policy-gather";
  io::CheckpointState state;  // weights only, step 0
  state.config = config;
  *state.config.mutable_model() = policy.config();
  state.layout = io::layout_of(config);
  const std::string path =
      io::save_checkpoint(scratch, state, policy.params(), io::MomentsView{}, job);
  if (primary) {
    models::DeepSeekV3Model whole(policy.config(), config.train().seed());
    load_policy_weights(path, whole, MPI_COMM_SELF);
    io::save_hf_weights(whole.params(), dir);
    std::error_code ec;
    std::filesystem::remove_all(scratch, ec);
  }
  // Nobody returns before the export is complete.
  TRIDENT_CHECK(MPI_Barrier(job) == MPI_SUCCESS, "MPI_Barrier after the HF export failed");
}

}  // namespace trident::train::grpo
