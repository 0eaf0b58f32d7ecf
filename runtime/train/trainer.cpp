#include "runtime/train/trainer.h"

#include <algorithm>
#include <chrono>
#include <cmath>

#include "models/deepseek_v3/loss.h"

namespace trident::train {

namespace {
// The rows of one micro-batch of a single-rank step.
io::RowRange micro_rows(int64_t global_batch, int64_t micro_batch, int64_t micro) {
  return io::micro_batch_rows(global_batch, /*dp_size=*/1, /*dp_rank=*/0, micro_batch, micro);
}
}  // namespace

double load_max_over_mean(const std::vector<int64_t>& tokens_per_expert) {
  if (tokens_per_expert.empty()) return 0.0;
  int64_t total = 0, peak = 0;
  for (int64_t count : tokens_per_expert) {
    total += count;
    peak = std::max(peak, count);
  }
  if (total == 0) return 0.0;
  const double mean = static_cast<double>(total) / static_cast<double>(tokens_per_expert.size());
  return static_cast<double>(peak) / mean;
}

Trainer::Trainer(const config::TridentConfig& config, std::unique_ptr<io::BatchSampler> sampler,
                 std::unique_ptr<io::BatchSampler> eval_sampler)
    : config_(config),
      model_(std::make_unique<models::DeepSeekV3Model>(config.model(), config.train().seed())),
      sampler_(std::move(sampler)),
      eval_sampler_(std::move(eval_sampler)) {
  const auto& train = config_.train();
  TRIDENT_USER_CHECK(train.global_batch() > 0 && train.micro_batch() > 0 &&
                         train.global_batch() % train.micro_batch() == 0,
                     "train.global_batch = ", train.global_batch(),
                     " must be a positive multiple of train.micro_batch = ", train.micro_batch());
  schedule_ = LrSchedule{train.lr(), train.min_lr(), train.warmup_steps(), train.steps()};
  adam_ = AdamWSettings{train.beta1(), train.beta2(), train.adam_eps(), train.weight_decay()};
  exp_avg_ = Tensor::zeros({model_->params().numel()});
  exp_avg_sq_ = Tensor::zeros({model_->params().numel()});
}

StepMetrics Trainer::step() {
  const auto start = std::chrono::steady_clock::now();
  const auto& train = config_.train();
  const int64_t step = ++step_;
  models::DeepSeekV3Model& model = *model_;
  const int64_t global_batch = train.global_batch();
  const int64_t micro_batches = global_batch / train.micro_batch();

  // Global target counts first: every micro-batch's loss is divided by them.
  std::vector<models::TokenBatch> micros;
  micros.reserve(static_cast<size_t>(micro_batches));
  models::TargetCounts global;
  for (int64_t micro = 0; micro < micro_batches; ++micro) {
    micros.push_back(sampler_->rows(step, micro_rows(global_batch, train.micro_batch(), micro)));
    global.add(models::count_targets(micros.back(), model.mtp_depth()));
  }
  const models::LossScales scales =
      models::make_loss_scales(global, train.mtp_loss_weight(), train.aux_loss_alpha());

  model.params().zero_grad();
  model.reset_expert_loads();
  StepMetrics metrics;
  metrics.step = step;
  for (const models::TokenBatch& micro : micros) {
    const models::LossResult result = model.forward_backward(micro, scales);
    metrics.loss += result.loss;
    metrics.lm_loss += result.lm_loss;
    metrics.mtp_loss += result.mtp_loss;
    metrics.balance_loss += result.balance_loss;
    metrics.tokens += micro.batch * micro.seq_len;
  }
  metrics.target_tokens = global.lm;

  metrics.grad_norm = std::sqrt(sum_of_squares(model.params().flat_grads()));
  metrics.lr = schedule_.at(step);
  apply_optimizer(metrics.lr, clip_coefficient(metrics.grad_norm, train.grad_clip()));

  for (const models::ExpertLoad& load : model.expert_loads()) {
    const double ratio = load_max_over_mean(load.tokens_per_expert);
    metrics.layer_load_max_over_mean.push_back(ratio);
    metrics.expert_load_max_over_mean = std::max(metrics.expert_load_max_over_mean, ratio);
  }
  model.update_router_bias(model.expert_loads(), train.bias_update_speed());

  metrics.step_seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  metrics.tokens_per_second =
      metrics.step_seconds > 0 ? static_cast<double>(metrics.tokens) / metrics.step_seconds : 0.0;
  return metrics;
}

double Trainer::apply_optimizer(double lr, double clip_scale) {
  models::ParameterStore& store = model_->params();
  float* values = store.flat_values().data<float>();
  float* grads = store.flat_grads().data<float>();
  float* m = exp_avg_.data<float>();
  float* v = exp_avg_sq_.data<float>();
  if (clip_scale < 1.0) {
    const int64_t n = store.flat_grads().numel();
    const float factor = static_cast<float>(clip_scale);
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < n; ++i) grads[i] *= factor;
  }
  for (const models::Parameter& param : store.parameters()) {
    if (!param.spec->trained) continue;
    const int64_t offset = param.offset;
    adamw_update(values + offset, grads + offset, m + offset, v + offset, param.value.numel(),
                 adam_, lr, step_, param.spec->weight_decay);
  }
  return clip_scale;
}

EvalMetrics Trainer::evaluate(int64_t batches) const {
  EvalMetrics out;
  if (!eval_sampler_) return out;
  double ce_sum = 0.0;
  const auto& train = config_.train();
  for (int64_t b = 0; b < batches; ++b) {
    for (int64_t micro = 0; micro < train.global_batch() / train.micro_batch(); ++micro) {
      const models::TokenBatch batch =
          eval_sampler_->rows(b + 1, micro_rows(train.global_batch(), train.micro_batch(), micro));
      const models::ForwardResult result = model_->forward(batch);
      ce_sum += result.losses.lm_ce_sum;
      out.targets += result.losses.lm_tokens;
    }
  }
  out.lm_loss = out.targets > 0 ? ce_sum / static_cast<double>(out.targets) : 0.0;
  return out;
}

}  // namespace trident::train
