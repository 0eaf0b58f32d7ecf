#pragma once
// The pretraining (and SFT) step on any layout: micro-batches → the step engine (every layout
// is a pipeline schedule, pp = 1 one of one stage) → gradients of the whole global batch,
// reduced by the optimizer as backward completes them → global-norm clipping → AdamW →
// aux-loss-free router-bias update → metrics.
//
// Every loss is normalised by the *global* batch's target counts before backward, so the
// gradient a step applies does not depend on how the batch is cut into micro-batches or over
// ranks: each data-parallel rank takes its contiguous global_batch / dp rows, in micro-batches
// of train.micro_batch; every rank of a pipeline (and of a TP group) reads the same rows; the
// target counts are summed over dp before anything runs. Metrics are summed over the pipeline
// and data-parallel ranks, so every rank reports the same ones (docs/training.md).
#include <cstdint>
#include <memory>
#include <vector>

#include "models/deepseek_v3/model.h"
#include "models/deepseek_v3/parallelize/pipeline_partition.h"
#include "parallel/context.h"
#include "runtime/config/trident.pb.h"
#include "runtime/io/batch_sampler.h"
#include "runtime/train/lr_schedule.h"
#include "runtime/train/model_stage_compute.h"
#include "runtime/train/nonfinite.h"
#include "runtime/train/optimizer.h"
#include "runtime/train/pretrain_objective.h"
#include "runtime/train/step_engine.h"

namespace trident::train {

struct StepMetrics {
  int64_t step = 0;
  double loss = 0.0;  // lm + λ·mtp + α·balance
  double lm_loss = 0.0;
  double mtp_loss = 0.0;
  double balance_loss = 0.0;
  double grad_norm = 0.0;  // before clipping
  double lr = 0.0;
  int64_t tokens = 0;         // model input tokens processed this step
  int64_t target_tokens = 0;  // counted LM targets
  double step_seconds = 0.0;
  double tokens_per_second = 0.0;
  // Load balance over the step's global batch: max over MoE layers of max(load) / mean(load).
  double expert_load_max_over_mean = 0.0;
  std::vector<double> layer_load_max_over_mean;  // per MoE layer (main layers, then MTP)
  int64_t grad_buckets = 0;                      // gradient buckets reduced
  int64_t grad_buckets_overlapped = 0;           // of which posted while backward was still running
  // The non-finite policy (nonfinite.h): whether this step was skipped, and the steps skipped
  // so far in this process.
  bool skipped = false;
  int64_t skipped_steps = 0;
  // This rank's memory over the step on the device its parameters live on (the host's on a CPU
  // run; runtime/core/allocator.h): the peak in tensors, the peak the caching allocator held
  // from the system, the share of that not in tensors, and the requests the cache could not
  // serve (0 in a steady state).
  int64_t memory_peak_bytes = 0;
  int64_t memory_reserved_bytes = 0;
  double memory_fragmentation = 0.0;
  int64_t system_allocations = 0;
};

struct EvalMetrics {
  double lm_loss = 0.0;  // mean CE per counted target on the evaluation batches
  int64_t targets = 0;
};

class Trainer {
 public:
  // `sampler` yields the training rows; `eval_sampler` (optional) the held-out rows. The
  // context outlives the trainer; `bucket_bytes` > 0 overrides parallel.dp_bucket_mb.
  Trainer(const config::TridentConfig& config, const parallel::ParallelContext& context,
          std::unique_ptr<io::BatchSampler> sampler,
          std::unique_ptr<io::BatchSampler> eval_sampler = nullptr, int64_t bucket_bytes = 0);
  // One rank.
  Trainer(const config::TridentConfig& config, std::unique_ptr<io::BatchSampler> sampler,
          std::unique_ptr<io::BatchSampler> eval_sampler = nullptr);

  // Runs global step `step_index() + 1` and returns its metrics.
  StepMetrics step();
  // Mean LM loss over `batches` global evaluation batches, forward only, through the same
  // schedule's forward passes.
  EvalMetrics evaluate(int64_t batches);

  int64_t step_index() const { return step_; }
  models::DeepSeekV3Model& model() { return *model_; }
  const models::DeepSeekV3Model& model() const { return *model_; }
  const config::TridentConfig& config() const { return config_; }
  const parallel::ParallelContext& context() const { return context_; }
  const LrSchedule& schedule() const { return schedule_; }
  const models::parallelize::PipelinePartition& partition() const { return partition_; }
  Optimizer& optimizer() { return *optimizer_; }
  const Optimizer& optimizer() const { return *optimizer_; }
  const StepEngine& engine() const { return engine_; }

  // Checkpoint restore (trainer_checkpoint.h): the step counter (the data position and the LR
  // schedule follow it).
  void set_step(int64_t step) { step_ = step; }

 private:
  io::RowRange rows_of(int64_t micro) const;
  int64_t micro_batches_per_rank() const;
  std::vector<models::TokenBatch> micro_batches(const io::BatchSampler& sampler,
                                                int64_t step) const;
  // Sums this step's expert loads over the pipeline and data-parallel ranks into the global
  // batch's loads, records their balance in `metrics` and applies the router-bias update.
  void update_router_bias(const StageRecord& record, StepMetrics& metrics);

  config::TridentConfig config_;
  const parallel::ParallelContext& context_;
  models::parallelize::PipelinePartition partition_;
  std::unique_ptr<models::DeepSeekV3Model> model_;
  std::unique_ptr<io::BatchSampler> sampler_;
  std::unique_ptr<io::BatchSampler> eval_sampler_;
  LrSchedule schedule_;
  StepEngine engine_;
  std::unique_ptr<Optimizer> optimizer_;
  ModelStageCompute compute_;
  PretrainObjective objective_;
  EvalObjective eval_objective_;
  NonFiniteGuard nonfinite_;
  int64_t step_ = 0;
};

// Load balance of one layer's token counts: max / mean (1 = perfectly even; 0 if no tokens).
double load_max_over_mean(const std::vector<int64_t>& tokens_per_expert);

}  // namespace trident::train
