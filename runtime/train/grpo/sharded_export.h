#pragma once
// `trident grpo --save-hf` for a policy whose ranks each hold part of the weights (TP slices,
// a share of the routed experts). The HF writers take whole tensors, so the policy first goes
// through the collective checkpoint writer (every rank its hyperslabs, global names) into a
// scratch file under DIR; the primary rank reads that file into a whole one-rank model, exports
// it with save_hf_weights and removes the scratch file. A policy of whole tensors is exported
// by the primary rank directly.
#include <mpi.h>

#include <string>

#include "models/deepseek_v3/model.h"
#include "runtime/config/trident.pb.h"

namespace trident::train::grpo {

// Collective over `job` when `sharded`; otherwise only the primary rank does anything.
void save_policy_hf(const config::TridentConfig& config, const models::DeepSeekV3Model& policy,
                    const std::string& dir, bool sharded, bool primary, MPI_Comm job);

}  // namespace trident::train::grpo
