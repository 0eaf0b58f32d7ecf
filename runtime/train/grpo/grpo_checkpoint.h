#pragma once
// GRPO and Trident checkpoints (docs/checkpoint-format.md).
//
// A GRPO checkpoint is a complete resume point: the policy's weights, its AdamW moments (the
// whole buffer, or this rank's ZeRO-1 shards), the frozen reference model with β > 0 (under
// /reference/weights), the step, and the trainer's counters as trainer_state JSON
// ({"trainer": "grpo", "optimizer_steps", "skipped_steps", "eval_accuracy_before",
// "eval_format_rate_before"}; the last is absent from older files). Prompts,
// sampling (counter-based RNG streams keyed by seed, prompt and sample) and the learning rate
// are functions of the step, so restoring these resumes a run bit for bit on the same layout;
// another layout reads its own slices and shards of the same global tensors.
//
// `trident grpo --init` also accepts a checkpoint file (pretraining's, SFT's or GRPO's) as well
// as a Hugging Face directory, and then takes its weights only.
#include <mpi.h>

#include <string>

#include "models/deepseek_v3/model.h"
#include "runtime/config/trident.pb.h"
#include "runtime/io/collective_watchdog.h"
#include "runtime/train/grpo/grpo_trainer.h"

namespace trident::train::grpo {

// Whether `path` names a Trident checkpoint file (a name ending in .h5, or any regular file)
// rather than an HF directory.
bool is_trident_checkpoint(const std::string& path);

// The model section of the config a checkpoint was written with.
config::ModelConfig checkpoint_model_config(const std::string& path);

// The model --init names: the model section of a checkpoint's stored config (verified first),
// or an HF directory's config.json.
config::ModelConfig init_model_config(const std::string& init);

// Fills `model`'s parameters (this rank's slices) from --init: a checkpoint's weights
// (load_policy_weights, collective over `comm`) or an HF directory's safetensors. Returns what
// was read, for the log: "checkpoint <path>" or "HF weights in <dir>".
std::string load_init_weights(const std::string& init, models::DeepSeekV3Model& model,
                              MPI_Comm comm);

// Fills the policy's parameters from the checkpoint's weights (its optimizer state and
// reference are ignored), whatever layout wrote the file: each rank reads its own slice of
// every tensor it holds (TP slices, held experts). Collective over `comm` (MPI must be
// initialised; MPI_COMM_SELF: this rank alone).
void load_policy_weights(const std::string& path, models::DeepSeekV3Model& policy,
                         MPI_Comm comm = MPI_COMM_SELF);

// What a GRPO checkpoint records besides the tensors.
struct GrpoCheckpointState {
  int64_t step = 0;  // GRPO steps completed
  GrpoTrainer::ResumeState trainer;
  double eval_accuracy_before = -1.0;  // the run's held-out accuracy before GRPO (-1: none)
  double eval_format_rate_before = -1.0;  // and its format rate (-1: none, or an older file)
};

// Writes the trainer's complete state as <checkpoint.dir>/step_<step>.h5 (keep_last honoured);
// returns the path. Nothing (empty) when checkpoint.dir is unset. Collective over `comm` (the
// job): every rank writes its hyperslab of each tensor and moment it holds, a tensor held by
// several ranks (replicas) once. `run_id` is stored in the file (the run's claim on
// checkpoint.dir, io/checkpoint_claim.h); `watchdog` (the run's, over `comm`) times the save's
// collective steps.
std::string save_grpo_checkpoint(const config::TridentConfig& config, GrpoTrainer& trainer,
                                 const GrpoCheckpointState& state, MPI_Comm comm,
                                 const std::string& run_id = "",
                                 io::CollectiveWatchdog* watchdog = nullptr);

// Collective over `comm`. Loads a GRPO checkpoint into `trainer` (policy, moments, reference,
// counters), whatever layout wrote it; the next step to run is the returned step + 1. Refuses,
// naming the file: a checkpoint written by another trainer (pretraining: give it to --init),
// and a file without a reference model when the run needs one (grpo.beta > 0).
GrpoCheckpointState load_grpo_checkpoint(const std::string& path,
                                         const config::TridentConfig& config, GrpoTrainer& trainer,
                                         MPI_Comm comm);

}  // namespace trident::train::grpo
