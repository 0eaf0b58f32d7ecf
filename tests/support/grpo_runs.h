#pragma once
// GRPO on a layout and its one-rank reference, for the layout tests.
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "models/deepseek_v3/model.h"
#include "parallel/context.h"
#include "runtime/config/trident.pb.h"
#include "runtime/train/grpo/grpo_trainer.h"

namespace trident::testing {

// The tiny model with a larger init (outputs far from uniform, so greedy decoding is not decided
// by round-off) and one dense layer first, so that with pp = 2 both stages hold MoE layers.
// AdamW eps 1e-6, as for pretraining (layout_runs.h): with 1e-8 the elements of a rarely
// routed expert whose gradient nearly cancels take whole O(lr) steps of a sign set by round-off,
// and a layout ends 2e-5 to 4e-5 away from one rank after 3 steps for that reason alone.
config::TridentConfig grpo_layout_config();

// 3 prompts × 3 samples, μ = 2 updates, β > 0 (so the frozen reference, sharded like the
// policy, is compared too), temperature 1.5 (completions of different lengths) and an external
// reward that varies within a group (an untrained model's rule reward is all zero).
train::grpo::GrpoOptions grpo_test_options(const config::TridentConfig& config,
                                           const std::string& loss_type);

// A GRPO trainer on `config`'s layout, with its context and policy.
struct GrpoRun {
  std::unique_ptr<parallel::ParallelContext> context;
  std::unique_ptr<models::DeepSeekV3Model> policy;
  std::unique_ptr<train::grpo::GrpoTrainer> trainer;
  std::vector<train::grpo::GrpoStepMetrics> steps;
  void run(int64_t count);
};
GrpoRun make_grpo_run(const config::TridentConfig& config, const train::grpo::GrpoOptions& options);
// The one-rank run (parallel section ignored) after `steps` steps, once per process and setup.
const GrpoRun& one_rank_grpo(const config::TridentConfig& config,
                             const train::grpo::GrpoOptions& options, int64_t steps);

// Rollouts and rewards identical to one rank's; the loss, gradient norm, KL and entropy to fp32
// round-off; the same metrics on every rank (collective over the world).
void expect_grpo_step_matches(const train::grpo::GrpoStepMetrics& got,
                              const train::grpo::GrpoStepMetrics& want);

}  // namespace trident::testing
