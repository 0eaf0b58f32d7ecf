#pragma once
// The `trident grpo` loop: build (or load, or resume) the policy, run grpo.steps steps, log a
// progress line, a JSONL record and TensorBoard scalars per step, save checkpoints
// (checkpoint.every, at the end, and on SIGTERM / SIGUSR1 / SIGINT), optionally evaluate and
// save HF weights. checkpoint.resume (--resume auto|PATH) continues a run from a GRPO
// checkpoint (grpo_checkpoint.h).
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "parallel/context.h"
#include "runtime/config/trident.pb.h"
#include "runtime/io/tensorboard.h"
#include "runtime/train/grpo/grpo_trainer.h"

namespace trident::train::grpo {

struct GrpoRunOptions {
  // An HF directory (config.json + safetensors) or a Trident checkpoint file (weights only);
  // empty: random init from train.seed with config.model.
  std::string init_hf_dir;
  std::string save_hf_dir;  // empty: no export
};

struct GrpoRunSummary {
  std::vector<GrpoStepMetrics> steps;  // the steps this process ran
  int64_t resumed_from_step = 0;       // 0: a fresh run
  double eval_accuracy_before = -1.0;  // with grpo.eval_prompts > 0
  double eval_format_rate_before = -1.0;
  double eval_accuracy_after = -1.0;
  // Non-zero: stopped early on this signal (SIGTERM, SIGUSR1, SIGINT) after saving a checkpoint.
  int stop_signal = 0;
};

nlohmann::json grpo_metrics_record(const GrpoStepMetrics& m);
// The step's metrics as TensorBoard scalars (grpo/reward, grpo/accuracy, …).
void write_grpo_scalars(io::TensorBoardWriter& writer, const GrpoStepMetrics& m);
// Every rank calls it with the run's parallel context; the primary rank writes the metrics and
// single-file exports, checkpoints and sharded exports are collective over context.job().
GrpoRunSummary run_grpo(const config::TridentConfig& config,
                        const parallel::ParallelContext& context, const GrpoRunOptions& options);

}  // namespace trident::train::grpo
