#pragma once
// One GRPO step on any layout: roll out G completions per prompt with the current policy
// (generate.h, through the pipeline stages), score them (rewards.h), compute group-relative
// advantages; then, through the one step engine (runtime/train/step_engine.h), a forward pass
// for the rollout policy's token log-probabilities (kept as π_old for all μ updates) and, with
// β > 0, the frozen reference's; then μ updates, each a training pass of the clipped surrogate
// with the KL penalty (policy_objective.h) and a step of the one optimizer
// (runtime/train/optimizer.h): bucketed reduction, ZeRO-1, the gradient norm, clipping, AdamW.
// GRPO therefore runs on every schedule pretraining runs (1F1B, interleaved, ZB-H1, DualPipeV).
//
// Data parallelism: each dp rank rolls out and differentiates its contiguous block of the step's
// prompt groups, one group per micro-batch. Rewards, lengths and flags of every completion are
// summed over dp, so advantages and aggregation coefficients are the global ones, and the
// gradients summed over dp are the whole batch's. A rank with fewer groups than another pads its
// passes with filler micro-batches, so the ranks of an expert-parallel group run as many MoE
// forwards as each other.
#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "models/deepseek_v3/model.h"
#include "models/deepseek_v3/parallelize/pipeline_partition.h"
#include "parallel/context.h"
#include "runtime/config/trident.pb.h"
#include "runtime/io/synthetic_task.h"
#include "runtime/train/grpo/generate.h"
#include "runtime/train/grpo/lockstep.h"
#include "runtime/train/grpo/loss.h"
#include "runtime/train/grpo/policy_objective.h"
#include "runtime/train/grpo/rewards.h"
#include "runtime/train/grpo/staged_decoder.h"
#include "runtime/train/lr_schedule.h"
#include "runtime/train/model_stage_compute.h"
#include "runtime/train/nonfinite.h"
#include "runtime/train/optimizer.h"
#include "runtime/train/step_engine.h"

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
  ops::AdamWSettings adam;
  DType moments = DType::F32;  // train.moment_dtype
  double grad_clip = 1.0;
  NonFiniteSettings nonfinite;  // train.nonfinite, train.max_skipped_steps
  io::ArithmeticOptions task;
  uint64_t seed = 0;
};
// From config.grpo (plus train.{beta1,beta2,adam_eps,weight_decay,grad_clip,seed,moment_dtype} and
// data.task_digits); throws UserError on an unknown loss type, estimator or scale.
GrpoOptions grpo_options(const config::TridentConfig& config);

// One prompt of a step.
struct GrpoPrompt {
  uint64_t id = 0;
  std::string text;
  std::string reference;
  int carries = 0;  // the problem's difficulty (io::ArithmeticProblem::carries); 0 when unknown
};
// This rank's contiguous block [begin, end) of `groups` prompt groups split over `size` ranks
// (as evenly as they go, the first `groups % size` ranks one more).
struct GroupRange {
  int64_t begin = 0;
  int64_t end = 0;
  bool contains(int64_t g) const { return g >= begin && g < end; }
  int64_t size() const { return end - begin; }
};
GroupRange rank_groups(int64_t groups, int rank, int size);

// Prompts [first, first + count) of the arithmetic train split.
std::vector<GrpoPrompt> arithmetic_prompts(uint64_t seed, io::Split split, uint64_t first,
                                           int64_t count, const io::ArithmeticOptions& task);

// Accuracy by difficulty: problems whose working carries 0, 1, 2, or 3 or more times.
inline constexpr int kCarryBuckets = 4;
inline int carry_bucket(int carries) {
  return carries < kCarryBuckets ? carries : kCarryBuckets - 1;
}

struct GrpoStepMetrics {
  int64_t step = 0;
  double reward = 0.0;  // mean over completions
  double reward_std = 0.0;
  double group_reward_std = 0.0;      // mean over groups of the reward std within each group
  double zero_variance_groups = 0.0;  // share of groups whose rewards are all equal
  // Per carry bucket; -1 where none of the step's prompts falls in it.
  std::array<double, kCarryBuckets> accuracy_by_carries{-1.0, -1.0, -1.0, -1.0};
  double accuracy = 0.0;     // fraction with the correct answer
  double format_rate = 0.0;  // fraction with the <think>/<answer> format
  double kl = 0.0;           // mean estimator value per counted token (0 with β = 0)
  double clip_fraction = 0.0;
  double completion_length = 0.0;      // tokens, mean
  double completion_length_max = 0.0;  // tokens
  double truncated_fraction = 0.0;
  double entropy = 0.0;    // mean policy entropy at completion tokens (nats)
  double loss = 0.0;       // −J of the first update
  double grad_norm = 0.0;  // before clipping, first update
  // The non-finite policy (nonfinite.h): whether this step's updates stopped at a non-finite
  // loss or gradient norm (the remaining updates of the step skipped), and the steps skipped so
  // far in this process.
  bool skipped = false;
  int64_t skipped_steps = 0;
  int64_t filtered_groups = 0;
  double rollout_seconds = 0.0;
  double update_seconds = 0.0;
};

// The policy of a GRPO run: this rank's part of `model` for the context's layout (its TP
// slices, its experts, the layers of its pipeline stages under parallel.schedule's split). The
// policy runs no MTP, so the last stage keeps no copy of the embedding. Its parameters live on
// `device` (training_device() for a run).
std::unique_ptr<models::DeepSeekV3Model> build_policy(const config::ModelConfig& model,
                                                      const config::ParallelConfig& parallel,
                                                      uint64_t seed,
                                                      const parallel::ParallelContext& context,
                                                      const models::Precision& precision = {},
                                                      Device device = Device::CPU);

class GrpoTrainer {
 public:
  // `policy` was built by build_policy for the same context and parallel config; both outlive
  // the trainer.
  GrpoTrainer(models::DeepSeekV3Model& policy, GrpoOptions options,
              const parallel::ParallelContext& context, const config::ParallelConfig& parallel);
  // One rank.
  GrpoTrainer(models::DeepSeekV3Model& policy, GrpoOptions options);
  GrpoTrainer(const GrpoTrainer&) = delete;
  GrpoTrainer& operator=(const GrpoTrainer&) = delete;

  // Step `step` (1-based) on the arithmetic prompts of that step.
  GrpoStepMetrics step(int64_t step);
  // One step on the given prompts (the same list on every rank).
  GrpoStepMetrics step(int64_t step, const std::vector<GrpoPrompt>& prompts);

  const GrpoOptions& options() const { return options_; }
  models::DeepSeekV3Model& policy() { return policy_; }
  // The frozen reference model (β > 0; null otherwise), with the policy's layout.
  models::DeepSeekV3Model* reference() { return reference_.get(); }
  Optimizer& optimizer() { return optimizer_; }

  // What a checkpoint needs besides weights, moments and the step: everything else the next
  // steps depend on (prompts, sampling and the learning rate are functions of the step).
  struct ResumeState {
    int64_t optimizer_steps = 0;  // AdamW updates so far (μ per step, fewer when skipped)
    int64_t skipped_steps = 0;    // the non-finite policy's count
  };
  ResumeState resume_state() const { return {optimizer_steps_, nonfinite_.skipped()}; }
  // After the weights, moments and reference were loaded: restores the counters and re-derives
  // the ZeRO-1 master weights from the loaded fp32 weights.
  void restore(const ResumeState& state);
  // Decoding through this rank's stages (evaluation uses it too).
  StagedDecoder& decoder() { return decoder_; }
  ForwardLockstep& lockstep() { return lockstep_; }

 private:
  // What a step's rollouts produced: every completion of this rank's groups, and for every
  // completion of the batch its reward, correctness, format, length and truncation (summed over
  // dp, so every rank has the whole batch's).
  struct Rollouts {
    std::vector<GenerationRequest> requests;  // one per prompt
    std::vector<Completion> completions;      // [prompts · G]; this rank's slots filled
    std::vector<double> fields;               // [prompts · G · field]
    std::vector<double> rewards;              // [prompts · G]
    int64_t mine_begin = 0;                   // this rank's prompt groups [begin, end)
    int64_t mine_end = 0;
  };
  Rollouts roll_out(const std::vector<GrpoPrompt>& prompts, GrpoStepMetrics& m);
  // This rank's micro-batches of the update passes: its kept groups, then fillers. Empty when no
  // rank kept a group.
  std::vector<GroupBatch> update_pass(const Rollouts& rollouts, GrpoStepMetrics& m);
  // Scoring of π_old and π_ref, then the μ updates.
  void update(int64_t step, std::vector<GroupBatch>& pass, GrpoStepMetrics& m);
  // The micro-batch count of a pass in which rank r has counts[r] groups.
  int pass_size(const std::vector<int64_t>& counts) const;
  // A forward-only pass of `compute`'s model over `pass`: the scores of its groups (on the last
  // stage; empty elsewhere).
  std::vector<CompletionScores> score(ModelStageCompute& compute, ScoringObjective& scoring,
                                      const std::vector<GroupBatch>& pass);
  void refresh_reference();

  models::DeepSeekV3Model& policy_;
  GrpoOptions options_;
  const parallel::ParallelContext& context_;
  config::ParallelConfig parallel_;
  models::parallelize::PipelinePartition partition_;
  StepEngine engine_;
  Optimizer optimizer_;
  LrSchedule lr_;
  ModelStageCompute compute_;
  ScoringObjective scoring_;
  PolicyObjective objective_;
  StagedDecoder decoder_;
  ForwardLockstep lockstep_;
  std::unique_ptr<models::DeepSeekV3Model> reference_;  // only with β > 0
  std::unique_ptr<ModelStageCompute> reference_compute_;
  std::unique_ptr<ScoringObjective> reference_scoring_;
  NonFiniteGuard nonfinite_;
  int64_t optimizer_steps_ = 0;
};

}  // namespace trident::train::grpo
