#pragma once
// The `trident grpo` loop: build (or load) the policy, run grpo.steps steps, log a progress
// line and a JSONL record per step, optionally evaluate and save HF weights.
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "parallel/context.h"
#include "runtime/config/trident.pb.h"
#include "runtime/train/grpo/grpo_trainer.h"

namespace trident::train::grpo {

struct GrpoRunOptions {
  // An HF directory (config.json + safetensors) or a Trident checkpoint file (weights only);
  // empty: random init from train.seed with config.model.
  std::string init_hf_dir;
  std::string save_hf_dir;  // empty: no export
};

struct GrpoRunSummary {
  std::vector<GrpoStepMetrics> steps;
  double eval_accuracy_before = -1.0;  // with grpo.eval_prompts > 0
  double eval_accuracy_after = -1.0;
  // Non-zero: stopped early on this signal (SIGTERM, SIGUSR1, SIGINT) after saving the policy.
  int stop_signal = 0;
};

nlohmann::json grpo_metrics_record(const GrpoStepMetrics& m);
// Every rank calls it with the run's parallel context; the primary rank writes the metrics and
// single-file exports, checkpoints and sharded exports are collective over context.job().
GrpoRunSummary run_grpo(const config::TridentConfig& config,
                        const parallel::ParallelContext& context, const GrpoRunOptions& options);

}  // namespace trident::train::grpo
