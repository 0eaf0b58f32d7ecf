#include "runtime/train/trainer.h"

#include <algorithm>
#include <chrono>
#include <cmath>

#include "models/deepseek_v3/loss.h"
#include "models/deepseek_v3/parallelize/parallelize.h"
#include "parallel/comm/sum_in_rank_order.h"
#include "runtime/core/allocator.h"
#include "runtime/core/error.h"
#include "runtime/train/placement.h"
#include "runtime/train/precision.h"

namespace trident::train {

namespace {
OptimizerSettings optimizer_settings(const config::TridentConfig& config, int64_t bucket_bytes) {
  const config::TrainConfig& train = config.train();
  OptimizerSettings settings;
  settings.adam =
      ops::AdamWSettings{train.beta1(), train.beta2(), train.adam_eps(), train.weight_decay()};
  settings.zero1 = config.parallel().zero1();
  settings.bucket_bytes = bucket_bytes;
  settings.bucket_mb = config.parallel().dp_bucket_mb();
  settings.moments = moment_dtype(train);
  return settings;
}

// The layout the context was built for must be the one the config describes.
void check_context_matches(const config::ParallelConfig& parallel,
                           const parallel::ParallelContext& context) {
  const parallel::MeshSizes& s = context.sizes();
  TRIDENT_CHECK(s.pp == std::max<int64_t>(1, parallel.pp()) &&
                    s.dp == std::max<int64_t>(1, parallel.dp()) &&
                    s.tp == std::max<int64_t>(1, parallel.tp()) &&
                    s.ep == std::max<int64_t>(1, parallel.ep()),
                "the parallel context (pp ", s.pp, " dp ", s.dp, " tp ", s.tp, " ep ", s.ep,
                ") was not built for this config's layout (pp ", parallel.pp(), " dp ",
                parallel.dp(), " tp ", parallel.tp(), " ep ", parallel.ep(), ")");
}

// Target counts as one integer vector [lm, mtp_1 … mtp_D, sequences] (for the sum over dp).
std::vector<int64_t> pack_counts(const models::TargetCounts& counts) {
  std::vector<int64_t> packed{counts.lm};
  packed.insert(packed.end(), counts.mtp.begin(), counts.mtp.end());
  packed.push_back(counts.sequences);
  return packed;
}

models::TargetCounts unpack_counts(const std::vector<int64_t>& packed) {
  models::TargetCounts counts;
  counts.lm = packed.front();
  counts.mtp.assign(packed.begin() + 1, packed.end() - 1);
  counts.sequences = packed.back();
  return counts;
}

models::PipelineHolding holding_of(const models::parallelize::PipelinePartition& partition,
                                   const parallel::ParallelContext& context, int64_t mtp_depth) {
  return models::parallelize::holding_of_rank(partition, context.rank(parallel::MeshAxis::Pp),
                                              mtp_depth);
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
    : Trainer(config, parallel::ParallelContext::one_rank(), std::move(sampler),
              std::move(eval_sampler)) {}

Trainer::Trainer(const config::TridentConfig& config, const parallel::ParallelContext& context,
                 std::unique_ptr<io::BatchSampler> sampler,
                 std::unique_ptr<io::BatchSampler> eval_sampler, int64_t bucket_bytes)
    : config_(config),
      context_(context),
      partition_(models::parallelize::pipeline_partition(config.model(), config.parallel())),
      model_(models::parallelize::build_model(
          config.model(), config.parallel(), config.train().seed(), context,
          holding_of(partition_, context, config.model().num_nextn_predict_layers()),
          model_precision(config.train()), training_device(config.train()))),
      sampler_(std::move(sampler)),
      eval_sampler_(std::move(eval_sampler)),
      engine_(config.parallel(), context, partition_),
      optimizer_(std::make_unique<Optimizer>(*model_, context, partition_,
                                             optimizer_settings(config, bucket_bytes))),
      compute_(*model_, partition_, context.rank(parallel::MeshAxis::Pp)),
      objective_(*model_),
      eval_objective_(*model_),
      nonfinite_(model_->params(), context, nonfinite_settings(config.train())) {
  check_context_matches(config.parallel(), context);
  const config::TrainConfig& train = config_.train();
  schedule_ = LrSchedule{train.lr(), train.min_lr(), train.warmup_steps(), train.steps()};
  TRIDENT_CHECK(engine_.accepts(static_cast<int>(micro_batches_per_rank())), "schedule '",
                engine_.schedule_name(), "' cannot run ", micro_batches_per_rank(),
                " micro-batches per step (the config validation should have refused it)");
}

int64_t Trainer::micro_batches_per_rank() const {
  const config::TrainConfig& train = config_.train();
  return train.global_batch() / (train.micro_batch() * context_.size(parallel::MeshAxis::Dp));
}

io::RowRange Trainer::rows_of(int64_t micro) const {
  const config::TrainConfig& train = config_.train();
  return io::micro_batch_rows(train.global_batch(), context_.size(parallel::MeshAxis::Dp),
                              context_.rank(parallel::MeshAxis::Dp), train.micro_batch(), micro);
}

std::vector<models::TokenBatch> Trainer::micro_batches(const io::BatchSampler& sampler,
                                                       int64_t step) const {
  std::vector<models::TokenBatch> micros;
  for (int64_t micro = 0; micro < micro_batches_per_rank(); ++micro) {
    micros.push_back(sampler.rows(step, rows_of(micro)));
  }
  return micros;
}

StepMetrics Trainer::step() {
  const auto start = std::chrono::steady_clock::now();
  // The memory of the device the run lives on (the host's on a plain CPU run).
  Allocator& pool = Allocator::instance(model_->params().device());
  pool.reset_peak();
  const int64_t system_allocations_before = pool.stats().system_allocations;
  const config::TrainConfig& train = config_.train();
  const int64_t step = ++step_;
  const int64_t depth = model_->mtp_depth();

  // Global target counts first (summed over the dp ranks): every micro-batch's loss on every
  // rank is divided by them, so the ranks' gradients sum to the full-batch gradient.
  const std::vector<models::TokenBatch> micros = micro_batches(*sampler_, step);
  models::TargetCounts local;
  local.mtp.assign(static_cast<size_t>(depth), 0);
  for (const models::TokenBatch& micro : micros) local.add(models::count_targets(micro, depth));
  std::vector<int64_t> counts = pack_counts(local);
  parallel::comm::sum_in_rank_order(context_.dp(), counts);
  const models::TargetCounts global = unpack_counts(counts);
  const models::LossScales scales =
      models::make_loss_scales(global, train.mtp_loss_weight(), train.aux_loss_alpha());

  optimizer_->begin_step();
  const std::vector<StageInput> inputs = stage_inputs(micros);
  objective_.begin_step(micros, scales);
  compute_.begin_step(inputs, objective_, models::DeepSeekV3Model::balance_coefficient(scales));
  engine_.train(compute_, static_cast<int>(micros.size()),
                [this](int block) { optimizer_->block_final(block); });
  optimizer_->finish_gradients();

  // Losses are known on the last stage, balance sums and tokens where their layers ran: the
  // sum over pp, then dp, gives every rank the same metrics.
  const StageRecord& record = compute_.record();
  const std::vector<double> totals = parallel::comm::sum_in_rank_order(
      context_.dp(), parallel::comm::sum_in_rank_order(
                         context_.pp(), {objective_.lm_loss(), objective_.mtp_loss(),
                                         record.balance_sum, static_cast<double>(record.tokens)}));
  StepMetrics metrics;
  metrics.step = step;
  metrics.lm_loss = totals[0];
  metrics.mtp_loss = totals[1];
  metrics.balance_loss =
      scales.sequences > 0 ? totals[2] / static_cast<double>(scales.sequences) : 0.0;
  metrics.loss = metrics.lm_loss + scales.mtp_weight * metrics.mtp_loss +
                 scales.balance_alpha * metrics.balance_loss;
  metrics.tokens = static_cast<int64_t>(totals[3]);
  metrics.target_tokens = global.lm;
  const ReductionStats reductions = optimizer_->reduction_stats();
  metrics.grad_buckets = reductions.buckets;
  metrics.grad_buckets_overlapped = reductions.buckets_overlapped;

  metrics.grad_norm = optimizer_->grad_norm();
  metrics.lr = schedule_.at(step);
  const std::string what = "step " + std::to_string(step);
  if (nonfinite_.admit(what, metrics.loss, metrics.grad_norm)) {
    const int64_t nonfinite = optimizer_->update(
        metrics.lr, clip_coefficient(metrics.grad_norm, train.grad_clip()), step);
    nonfinite_.check_update(what, train.lr(), nonfinite);
    update_router_bias(record, metrics);
  } else {
    metrics.skipped = true;
  }
  metrics.skipped_steps = nonfinite_.skipped();
  const MemoryStats memory = pool.stats();
  metrics.memory_peak_bytes = memory.peak_bytes;
  metrics.memory_reserved_bytes = memory.peak_reserved_bytes;
  metrics.memory_fragmentation = memory.peak_fragmentation();
  metrics.system_allocations = memory.system_allocations - system_allocations_before;

  metrics.step_seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  metrics.tokens_per_second =
      metrics.step_seconds > 0 ? static_cast<double>(metrics.tokens) / metrics.step_seconds : 0.0;
  return metrics;
}

void Trainer::update_router_bias(const StageRecord& record, StepMetrics& metrics) {
  std::vector<models::ExpertLoad> loads = record.loads;
  std::vector<int64_t> flat;
  for (const models::ExpertLoad& load : loads) {
    flat.insert(flat.end(), load.tokens_per_expert.begin(), load.tokens_per_expert.end());
  }
  // Each rank recorded the loads of its own layers and rows: the sum over pp and dp is the
  // global batch's (TP ranks route the same tokens and record the same loads).
  parallel::comm::sum_in_rank_order(context_.pp(), flat);
  parallel::comm::sum_in_rank_order(context_.dp(), flat);
  size_t at = 0;
  for (models::ExpertLoad& load : loads) {
    for (int64_t& tokens : load.tokens_per_expert) tokens = flat[at++];
    const double ratio = load_max_over_mean(load.tokens_per_expert);
    metrics.layer_load_max_over_mean.push_back(ratio);
    metrics.expert_load_max_over_mean = std::max(metrics.expert_load_max_over_mean, ratio);
  }
  model_->update_router_bias(loads, config_.train().bias_update_speed());
}

EvalMetrics Trainer::evaluate(int64_t batches) {
  EvalMetrics out;
  if (!eval_sampler_) return out;
  double ce_sum = 0.0;
  int64_t targets = 0;
  for (int64_t b = 0; b < batches; ++b) {
    const std::vector<models::TokenBatch> micros = micro_batches(*eval_sampler_, b + 1);
    const std::vector<StageInput> inputs = stage_inputs(micros);
    eval_objective_.begin_step(micros);
    compute_.begin_step(inputs, eval_objective_, 0.0f);
    engine_.forward(compute_, static_cast<int>(micros.size()));
    ce_sum += eval_objective_.ce_sum();
    targets += eval_objective_.targets();
  }
  const std::vector<double> totals = parallel::comm::sum_in_rank_order(
      context_.dp(),
      parallel::comm::sum_in_rank_order(context_.pp(), {ce_sum, static_cast<double>(targets)}));
  out.targets = static_cast<int64_t>(totals[1]);
  out.lm_loss = out.targets > 0 ? totals[0] / static_cast<double>(out.targets) : 0.0;
  return out;
}

}  // namespace trident::train
