#pragma once
// One GRPO step: roll out G completions per prompt with the current policy (generate.h),
// score them (rewards.h), compute group-relative advantages and the rollout policy's token
// log-probs (kept as π_old for all μ updates) and, with β > 0, the frozen reference's; then μ
// AdamW updates on the clipped surrogate with the KL penalty (loss.h), each a gradient of the
// whole batch accumulated group by group.
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "models/deepseek_v3/model.h"
#include "parallel/comm/communicator.h"
#include "runtime/config/trident.pb.h"
#include "runtime/io/synthetic_task.h"
#include "runtime/train/grpo/generate.h"
#include "runtime/train/grpo/lockstep.h"
#include "runtime/train/grpo/loss.h"
#include "runtime/train/grpo/pipeline_policy.h"
#include "runtime/train/grpo/rewards.h"
#include "runtime/train/optimizer.h"

namespace trident::train::grpo {

struct GrpoOptions {
  int64_t prompts_per_step = 8;
  int64_t group_size = 8;
  SamplingOptions sampling;
  AdvantageOptions advantages;
  ObjectiveOptions objective;
  LossType loss_type = LossType::Grpo;
  int64_t updates_per_batch = 1;  // μ
  bool filter_zero_variance = false;
  int64_t ref_refresh_every = 0;
  bool mask_truncated = false;
  RuleRewardWeights reward_weights;
  std::string reward_command;
  double reward_timeout_s = 60.0;
  double lr = 1e-6;
  int64_t warmup_steps = 0;  // lr rises linearly to `lr` over the first steps
  AdamWSettings adam;
  double grad_clip = 1.0;
  io::ArithmeticOptions task;
  uint64_t seed = 0;
};
// From config.grpo (plus train.{beta1,beta2,adam_eps,weight_decay,grad_clip,seed} and
// data.task_digits); throws UserError on an unknown loss type, estimator or scale.
GrpoOptions grpo_options(const config::TridentConfig& config);

// One prompt of a step.
struct GrpoPrompt {
  uint64_t id = 0;
  std::string text;
  std::string reference;
};
// Prompts [first, first + count) of the arithmetic train split.
std::vector<GrpoPrompt> arithmetic_prompts(uint64_t seed, io::Split split, uint64_t first,
                                           int64_t count, const io::ArithmeticOptions& task);

struct GrpoStepMetrics {
  int64_t step = 0;
  double reward = 0.0;  // mean over completions
  double reward_std = 0.0;
  double accuracy = 0.0;     // fraction with the correct answer
  double format_rate = 0.0;  // fraction with the <think>/<answer> format
  double kl = 0.0;           // mean estimator value per counted token (0 with β = 0)
  double clip_fraction = 0.0;
  double completion_length = 0.0;
  double truncated_fraction = 0.0;
  double entropy = 0.0;    // mean policy entropy at completion tokens (nats)
  double loss = 0.0;       // −J of the first update
  double grad_norm = 0.0;  // before clipping, first update
  int64_t filtered_groups = 0;
  double rollout_seconds = 0.0;
  double update_seconds = 0.0;
};

// How the policy is spread over ranks. dp splits the prompt groups. With expert parallelism
// (ep with more than one rank) the policy was built with `setup` (its routed experts split over
// ep, parallel/ep/expert_parallel_moe.h); every MoE forward is then a collective over ep, so
// rollouts, scoring passes and updates run in lock step over it (lockstep.h). Routed expert
// gradients are summed over edp (the ranks holding the same experts), all others over dp.
// Tensor parallelism needs nothing here: it comes with the policy (built with
// models::ModelParallel; vocab_sharded.h), dp is then the group of ranks with the same TP rank,
// and the TP ranks of one replica do the same work.
struct GrpoParallel {
  parallel::Communicator* dp = nullptr;
  parallel::Communicator* ep = nullptr;
  parallel::Communicator* edp = nullptr;
  models::ExpertParallelSetup setup;  // also builds the frozen reference (β > 0)
  // Pipeline parallelism (pipeline_policy.h): the pp group of this rank's chain of stages; the
  // policy holds stage pp->rank() (grpo_pipeline_holding). dp, ep and edp are then the groups of
  // the ranks of the same stage.
  parallel::Communicator* pp = nullptr;
};

class GrpoTrainer {
 public:
  GrpoTrainer(models::DeepSeekV3Model& policy, GrpoOptions options);
  // Data parallel over `dp` (null or size 1: one rank). Every rank holds the whole policy and
  // the same prompt list; rank r rolls out and differentiates the contiguous block r of the
  // step's prompt groups. Rewards, lengths and flags of every completion are summed over the
  // group so advantages and aggregation coefficients are the global ones; the gradient is
  // summed over the group before clipping and AdamW, so every rank applies the same update as
  // one rank holding the whole batch.
  GrpoTrainer(models::DeepSeekV3Model& policy, GrpoOptions options, parallel::Communicator* dp);
  // Data and expert parallel (see GrpoParallel); the EP group must fold over the dp ranks.
  GrpoTrainer(models::DeepSeekV3Model& policy, GrpoOptions options, GrpoParallel parallel);
  GrpoTrainer(const GrpoTrainer&) = delete;
  GrpoTrainer& operator=(const GrpoTrainer&) = delete;

  // Step `step` (1-based) on the arithmetic prompts of that step.
  GrpoStepMetrics step(int64_t step);
  // One step on the given prompts.
  GrpoStepMetrics step(int64_t step, const std::vector<GrpoPrompt>& prompts);

  const GrpoOptions& options() const { return options_; }

 private:
  void refresh_reference();
  void apply_optimizer(double lr);
  double step_lr(int64_t step) const;
  bool expert_parallel() const { return lockstep_.active(); }
  // Sums the gradients over the ranks that share them; returns the global squared norm with
  // every routed expert counted once (summed over pipeline stages).
  double reduce_gradients();
  double reduce_stage_gradients();

  models::DeepSeekV3Model* policy_;
  GrpoOptions options_;
  parallel::Communicator* dp_ = nullptr;
  GrpoParallel parallel_;
  ForwardLockstep lockstep_;
  StagedPolicy stages_;  // the policy as this rank runs it (one pipeline stage or all)
  std::unique_ptr<models::DeepSeekV3Model> reference_;  // only with β > 0
  std::unique_ptr<StagedPolicy> reference_stages_;
  Tensor exp_avg_, exp_avg_sq_;
  int64_t optimizer_steps_ = 0;
};

}  // namespace trident::train::grpo
