#pragma once
// The pretraining (and SFT) step: micro-batches → gradients of the whole global batch →
// global-norm clipping → AdamW → aux-loss-free router-bias update → metrics.
//
// Every loss is normalised by the *global* batch's target counts before backward, so the
// gradient a step applies does not depend on how the batch is cut into micro-batches (or,
// with data parallelism, across ranks).
#include <cstdint>
#include <memory>
#include <vector>

#include "models/deepseek_v3/model.h"
#include "runtime/config/trident.pb.h"
#include "runtime/io/batch_sampler.h"
#include "runtime/train/lr_schedule.h"
#include "runtime/train/optimizer.h"

namespace trident::train {

struct StepMetrics {
  int64_t step = 0;
  double loss = 0.0;          // lm + λ·mtp + α·balance
  double lm_loss = 0.0;
  double mtp_loss = 0.0;
  double balance_loss = 0.0;
  double grad_norm = 0.0;     // before clipping
  double lr = 0.0;
  int64_t tokens = 0;         // model input tokens processed this step
  int64_t target_tokens = 0;  // counted LM targets
  double step_seconds = 0.0;
  double tokens_per_second = 0.0;
  // Load balance over the step's global batch: max over MoE layers of max(load) / mean(load).
  double expert_load_max_over_mean = 0.0;
  std::vector<double> layer_load_max_over_mean;  // per MoE layer (main layers, then MTP)
};

struct EvalMetrics {
  double lm_loss = 0.0;  // mean CE per counted target on the evaluation batches
  int64_t targets = 0;
};

class Trainer {
 public:
  // `sampler` yields the training rows; `eval_sampler` (optional) the held-out rows.
  Trainer(const config::TridentConfig& config, std::unique_ptr<io::BatchSampler> sampler,
          std::unique_ptr<io::BatchSampler> eval_sampler = nullptr);

  // Runs global step `step_index() + 1` and returns its metrics.
  StepMetrics step();
  // Mean LM loss over `batches` global evaluation batches (forward only).
  EvalMetrics evaluate(int64_t batches) const;

  int64_t step_index() const { return step_; }
  models::DeepSeekV3Model& model() { return *model_; }
  const models::DeepSeekV3Model& model() const { return *model_; }
  const config::TridentConfig& config() const { return config_; }
  const LrSchedule& schedule() const { return schedule_; }

  // fp32 first and second moments, aligned with model().params().flat_values().
  const Tensor& exp_avg() const { return exp_avg_; }
  const Tensor& exp_avg_sq() const { return exp_avg_sq_; }

 private:
  double apply_optimizer(double lr, double clip_scale);

  config::TridentConfig config_;
  std::unique_ptr<models::DeepSeekV3Model> model_;
  std::unique_ptr<io::BatchSampler> sampler_;
  std::unique_ptr<io::BatchSampler> eval_sampler_;
  LrSchedule schedule_;
  AdamWSettings adam_;
  Tensor exp_avg_;
  Tensor exp_avg_sq_;
  int64_t step_ = 0;
};

// Load balance of one layer's token counts: max / mean (1 = perfectly even; 0 if no tokens).
double load_max_over_mean(const std::vector<int64_t>& tokens_per_expert);

}  // namespace trident::train
