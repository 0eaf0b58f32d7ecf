#pragma once
// GRPO and Trident checkpoints (docs/checkpoint-format.md): `trident grpo --init` accepts a
// checkpoint file as well as a Hugging Face directory, and a GRPO run writes the policy's
// weights as checkpoints (checkpoint.dir, every checkpoint.every GRPO steps and at the end; the
// GRPO optimizer state and reference model are not stored, so such a file is an initialisation,
// not an exact resume point).
#include <mpi.h>

#include <string>

#include "models/deepseek_v3/model.h"
#include "runtime/io/collective_watchdog.h"
#include "runtime/config/trident.pb.h"

namespace trident::train::grpo {

// Whether `path` names a Trident checkpoint file (a name ending in .h5, or any regular file)
// rather than an HF directory.
bool is_trident_checkpoint(const std::string& path);

// The model section of the config a checkpoint was written with.
config::ModelConfig checkpoint_model_config(const std::string& path);

// Fills the policy's parameters from the checkpoint's weights (its optimizer state is ignored),
// whatever layout wrote the file: each rank reads its own slice of every tensor it holds (TP
// slices, held experts). Collective over `comm` (MPI must be initialised; MPI_COMM_SELF: this
// rank alone).
void load_policy_weights(const std::string& path, models::DeepSeekV3Model& policy,
                         MPI_Comm comm = MPI_COMM_SELF);

// Writes the policy's weights as <checkpoint.dir>/step_<step>.h5 (keep_last honoured); returns
// the path. Nothing (empty) when checkpoint.dir is unset. Collective over `comm`: every rank
// writes its hyperslab of each tensor it holds, a tensor held by several ranks (replicas) once,
// so a sharded policy (TP, EP) writes one file with global names and shapes. `run_id` is
// stored in the file (the run's claim on checkpoint.dir, io/checkpoint_claim.h); `watchdog`
// (the run's, over `comm`) times the save's collective steps.
std::string save_policy_checkpoint(const config::TridentConfig& config,
                                   const models::DeepSeekV3Model& policy, int64_t step,
                                   MPI_Comm comm = MPI_COMM_SELF, const std::string& run_id = "",
                                   io::CollectiveWatchdog* watchdog = nullptr);

}  // namespace trident::train::grpo
