#pragma once
// The `trident grpo` loop: build (or load) the policy, run grpo.steps steps, log a progress
// line and a JSONL record per step, optionally evaluate and save HF weights.
#include <mpi.h>

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "parallel/comm/communicator.h"
#include "runtime/config/trident.pb.h"
#include "runtime/train/grpo/grpo_trainer.h"

namespace trident::train::grpo {

struct GrpoRunOptions {
  // An HF directory (config.json + safetensors) or a Trident checkpoint file (weights only);
  // empty: random init from train.seed with config.model.
  std::string init_hf_dir;
  std::string save_hf_dir;  // empty: no export
  // Data parallelism (null: one rank); only the primary rank writes metrics and weights.
  parallel::Communicator* dp = nullptr;
  // Expert parallelism (parallel.ep > 1): the EP group, folded over the dp ranks, and the
  // expert-data-parallel group of the ranks holding the same experts.
  parallel::Communicator* ep = nullptr;
  parallel::Communicator* edp = nullptr;
  // Tensor parallelism (parallel.tp > 1): the TP group; dp then joins the ranks of one TP rank.
  parallel::Communicator* tp = nullptr;
  // Every rank of the job: checkpoints are written and read collectively over it, and so is the
  // HF export of a sharded (TP, EP or PP) policy.
  MPI_Comm job = MPI_COMM_SELF;
  // Pipeline parallelism (parallel.pp > 1): this rank's pp group; dp, ep and edp are then the
  // groups of the ranks of the same stage.
  parallel::Communicator* pp = nullptr;
  bool primary = true;
};

// Refuses layouts the GRPO trainer does not run (identically on every rank, before any
// communicator exists): anything but parallel.dp × parallel.tp ranks, with the routed experts
// optionally split over parallel.ep (a divisor of parallel.dp × parallel.tp), or, with
// parallel.pp > 1 (and tp = 1), chains of linear pipeline stages whose stages each have
// parallel.dp ranks.
void check_grpo_layout(const config::ParallelConfig& parallel);

struct GrpoRunSummary {
  std::vector<GrpoStepMetrics> steps;
  double eval_accuracy_before = -1.0;  // with grpo.eval_prompts > 0
  double eval_accuracy_after = -1.0;
  // Non-zero: stopped early on this signal (SIGTERM, SIGUSR1, SIGINT) after saving the policy.
  int stop_signal = 0;
};

nlohmann::json grpo_metrics_record(const GrpoStepMetrics& m);
GrpoRunSummary run_grpo(const config::TridentConfig& config, const GrpoRunOptions& options);

}  // namespace trident::train::grpo
