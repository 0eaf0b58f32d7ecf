#include "runtime/train/trainer.h"

#include <algorithm>
#include <chrono>
#include <cmath>

#include "models/deepseek_v3/loss.h"
#include "parallel/dp/backward_stages.h"
#include "parallel/dp/reduce_sum.h"
#include "parallel/ep/token_split_moe.h"

namespace trident::train {

namespace {
constexpr int64_t kMiB = 1024 * 1024;

// Every TP rank holds the whole tensor: replicated parameters, and the routed experts (split
// over ETP, not TP) unless expert parallelism spreads them over the TP ranks too.
bool tp_replicated(const models::ParamSpec& spec, int ep_size) {
  if (spec.kind == models::ParamKind::kExpert) return ep_size == 1;
  return spec.placement.tp == models::TpSplit::kReplicated;
}

double squares(const float* values, int64_t count) {
  double sum = 0.0;
  for (int64_t i = 0; i < count; ++i) sum += static_cast<double>(values[i]) * values[i];
  return sum;
}

std::unique_ptr<models::DeepSeekV3Model> make_model(
    const config::TridentConfig& config, const std::shared_ptr<parallel::Communicator>& tp,
    const std::shared_ptr<parallel::Communicator>& ep, const PipelinePartition* pipeline,
    const parallel::Communicator* pp) {
  models::ModelParallel parallel;
  if (tp != nullptr) {
    parallel.tp = tp.get();
    parallel.tp_rank = tp->rank();
    parallel.tp_size = tp->size();
  }
  if (pipeline != nullptr) {
    parallel.pipeline =
        holding_of_rank(*pipeline, pp->rank(), config.model().num_nextn_predict_layers());
  }
  models::ExpertParallelSetup setup;
  if (ep != nullptr) {
    // With tp > 1 each TP rank dispatches its share of the tokens (parallel/ep/token_split_moe.h).
    setup = parallel::ep::expert_parallel_setup(config.model(), config.parallel(), ep, tp);
  }
  return std::make_unique<models::DeepSeekV3Model>(config.model(), config.train().seed(), parallel,
                                                   setup);
}

bool routed_expert(const models::ParamSpec& spec) {
  return spec.kind == models::ParamKind::kExpert;
}

// Where each parameter sits in the flat buffers, when its gradient is final, and how AdamW
// treats it: what the bucket plan and the ZeRO-1 shard are built from.
std::vector<parallel::dp::ParamExtent> param_extents(const models::DeepSeekV3Model& model,
                                                     int ep_size) {
  std::vector<parallel::dp::ParamExtent> extents;
  for (const models::Parameter& param : model.params().parameters()) {
    parallel::dp::ParamExtent extent;
    extent.offset = param.offset;
    extent.numel = param.value.numel();
    extent.ready_stage = parallel::dp::finishing_stage(*param.spec, model);
    extent.trained = param.spec->trained;
    extent.decay = param.spec->weight_decay;
    extent.tp_replicated = tp_replicated(*param.spec, ep_size);
    extents.push_back(extent);
  }
  return extents;
}

// Target counts as one integer vector [lm, mtp_1 … mtp_D, sequences] (for the dp sum).
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
                 std::unique_ptr<io::BatchSampler> eval_sampler, TrainerOptions options)
    : config_(config),
      dp_(std::move(options.dp)),
      tp_(std::move(options.tp)),
      ep_(std::move(options.ep)),
      edp_(std::move(options.edp)),
      pp_(std::move(options.pp)),
      partition_(pipeline_partition_for(config, pp_ ? pp_->size() : 1)),
      model_(make_model(config, tp_, ep_, partition_.get(), pp_.get())),
      sampler_(std::move(sampler)),
      eval_sampler_(std::move(eval_sampler)) {
  const auto& train = config_.train();
  const auto& par = config_.parallel();
  dp_size_ = dp_ ? dp_->size() : 1;
  dp_rank_ = dp_ ? dp_->rank() : 0;
  tp_size_ = tp_ ? tp_->size() : 1;
  tp_rank_ = tp_ ? tp_->rank() : 0;
  const int64_t configured_tp = std::max<int64_t>(1, par.tp());
  TRIDENT_USER_CHECK(configured_tp == tp_size_, "parallel.tp = ", par.tp(),
                     " but the trainer got a ", tp_size_, "-rank tensor-parallel group");
  ep_size_ = ep_ ? ep_->size() : 1;
  TRIDENT_USER_CHECK(std::max<int64_t>(1, par.ep()) == ep_size_, "parallel.ep = ", par.ep(),
                     " but the trainer got a ", ep_size_, "-rank expert-parallel group");
  TRIDENT_USER_CHECK(par.etp() <= 1, "parallel.etp = ", par.etp(),
                     ": expert tensor parallelism is not implemented (set parallel.etp = 1)");
  TRIDENT_USER_CHECK((dp_size_ * tp_size_) % ep_size_ == 0, "parallel.ep = ", par.ep(),
                     " must divide parallel.dp × parallel.tp = ", dp_size_ * tp_size_,
                     " (the MoE layers refold the dp × tp ranks as edp × ep)");
  const int64_t configured_dp = std::max<int64_t>(1, par.dp());
  TRIDENT_USER_CHECK(configured_dp == dp_size_, "parallel.dp = ", par.dp(), " but ", dp_size_,
                     " data-parallel rank(s) are running (start ", configured_dp,
                     " ranks per model replica with mpirun, or set parallel.dp = ", dp_size_, ")");
  TRIDENT_USER_CHECK(train.global_batch() > 0 && train.micro_batch() > 0 &&
                         train.global_batch() % (train.micro_batch() * dp_size_) == 0,
                     "train.global_batch = ", train.global_batch(),
                     " must be a positive multiple of train.micro_batch × parallel.dp = ",
                     train.micro_batch(), " × ", dp_size_);
  schedule_ = LrSchedule{train.lr(), train.min_lr(), train.warmup_steps(), train.steps()};
  adam_ = AdamWSettings{train.beta1(), train.beta2(), train.adam_eps(), train.weight_decay()};

  const int64_t bucket_bytes = options.bucket_bytes > 0
                                   ? options.bucket_bytes
                                   : std::max<int64_t>(1, par.dp_bucket_mb()) * kMiB;
  const std::vector<parallel::dp::ParamExtent> extents = param_extents(*model_, ep_size_);
  const int64_t flat_numel = model_->params().numel();
  const int64_t bucket_elements =
      std::max<int64_t>(1, bucket_bytes / static_cast<int64_t>(sizeof(float)));
  const Tensor& flat_grads = model_->params().flat_grads();
  // The last stage's embedding copy is reduced and updated on stage 0's rank, then copied
  // back (pipeline_step.cpp): its elements stay out of this rank's buckets and shards.
  embedding_copy_ = partition_ != nullptr && partition_->embedding_copy(model_->mtp_depth()) &&
                    pp_->rank() == partition_->last_rank();
  std::vector<bool> reduced(extents.size(), true);
  for (size_t i = 0; i < extents.size(); ++i) {
    const models::Parameter& param = model_->params().parameters()[i];
    if (embedding_copy_ && param.spec->kind == models::ParamKind::kEmbedding) reduced[i] = false;
  }
  if (ep_size_ == 1) {
    parallel::dp::BucketPlan plan =
        embedding_copy_
            ? parallel::dp::plan_buckets(extents, flat_numel, bucket_elements, dp_size_,
                                         parallel::dp::member_ranges(extents, reduced))
            : parallel::dp::plan_buckets(extents, flat_numel, bucket_elements, dp_size_);
    if (par.zero1()) {
      zero1_ = std::make_unique<parallel::dp::Zero1State>(plan, dp_rank_, extents);
    }
    reducer_ = std::make_unique<parallel::dp::GradReducer>(dp_.get(), flat_grads, std::move(plan),
                                                           par.zero1());
  } else {
    // Dense parameters over DP, routed experts over EDP: one plan per group over its ranges.
    std::vector<bool> expert(extents.size());
    std::vector<parallel::dp::ParamExtent> dense_extents, expert_extents;
    const std::vector<models::Parameter>& params = model_->params().parameters();
    for (size_t i = 0; i < extents.size(); ++i) {
      expert[i] = routed_expert(*params[i].spec);
      (expert[i] ? expert_extents : dense_extents).push_back(extents[i]);
    }
    std::vector<bool> dense(expert.size());
    for (size_t i = 0; i < expert.size(); ++i) dense[i] = !expert[i] && reduced[i];
    const int edp_size = edp_ ? edp_->size() : 1;
    const int edp_rank = edp_ ? edp_->rank() : 0;
    parallel::dp::BucketPlan dense_plan =
        parallel::dp::plan_buckets(extents, flat_numel, bucket_elements, dp_size_,
                                   parallel::dp::member_ranges(extents, dense));
    parallel::dp::BucketPlan expert_plan =
        parallel::dp::plan_buckets(extents, flat_numel, bucket_elements, edp_size,
                                   parallel::dp::member_ranges(extents, expert));
    if (par.zero1()) {
      zero1_ = std::make_unique<parallel::dp::Zero1State>(dense_plan, dp_rank_, dense_extents);
      expert_zero1_ =
          std::make_unique<parallel::dp::Zero1State>(expert_plan, edp_rank, expert_extents);
    }
    reducer_ = std::make_unique<parallel::dp::GradReducer>(dp_.get(), flat_grads,
                                                           std::move(dense_plan), par.zero1());
    expert_reducer_ = std::make_unique<parallel::dp::GradReducer>(
        edp_.get(), flat_grads, std::move(expert_plan), par.zero1());
  }
  if (!par.zero1()) {
    exp_avg_ = Tensor::zeros({flat_numel});
    exp_avg_sq_ = Tensor::zeros({flat_numel});
  }
  if (partition_) setup_pipeline();
}

int64_t Trainer::micro_batches_per_rank() const {
  const auto& train = config_.train();
  return train.global_batch() / (train.micro_batch() * dp_size_);
}

io::RowRange Trainer::rows_of(int64_t micro) const {
  const auto& train = config_.train();
  return io::micro_batch_rows(train.global_batch(), dp_size_, dp_rank_, train.micro_batch(), micro);
}

StepMetrics Trainer::step() {
  if (partition_) return pipeline_step();
  const auto start = std::chrono::steady_clock::now();
  const auto& train = config_.train();
  const int64_t step = ++step_;
  models::DeepSeekV3Model& model = *model_;
  parallel::Communicator* dp = dp_.get();

  // Global target counts first (summed over the dp ranks): every micro-batch's loss on every
  // rank is divided by them, so the ranks' gradients sum to the full-batch gradient.
  std::vector<models::TokenBatch> micros;
  models::TargetCounts local;
  local.mtp.assign(static_cast<size_t>(model.mtp_depth()), 0);
  for (int64_t micro = 0; micro < micro_batches_per_rank(); ++micro) {
    micros.push_back(sampler_->rows(step, rows_of(micro)));
    local.add(models::count_targets(micros.back(), model.mtp_depth()));
  }
  std::vector<int64_t> counts = pack_counts(local);
  parallel::dp::sum_over_ranks(dp, counts);
  const models::TargetCounts global = unpack_counts(counts);
  const models::LossScales scales =
      models::make_loss_scales(global, train.mtp_loss_weight(), train.aux_loss_alpha());

  model.params().zero_grad();
  model.reset_expert_loads();
  reducer_->start_step();
  if (expert_reducer_) expert_reducer_->start_step();
  // Loss contributions of this rank: loss, lm, mtp, balance, input tokens.
  std::vector<double> sums(5, 0.0);
  for (size_t i = 0; i < micros.size(); ++i) {
    const models::TokenBatch& micro = micros[i];
    models::ModelContext ctx;
    model.forward(micro, scales, ctx);
    model.record_expert_loads(ctx);
    sums[0] += ctx.losses.loss;
    sums[1] += ctx.losses.lm_loss;
    sums[2] += ctx.losses.mtp_loss;
    sums[3] += ctx.losses.balance_loss;
    sums[4] += static_cast<double>(micro.batch * micro.seq_len);
    // Only the last micro-batch completes gradients: its backward stages post the buckets.
    const bool last = i + 1 == micros.size();
    parallel::dp::staged_backward(model, ctx, [&](int64_t stage) {
      if (!last) return;
      reducer_->stage_done(stage);
      if (expert_reducer_) expert_reducer_->stage_done(stage);
    });
  }
  reducer_->finish();
  if (expert_reducer_) expert_reducer_->finish();

  const std::vector<double> totals = parallel::dp::sum_over_ranks(dp, sums);
  StepMetrics metrics;
  metrics.step = step;
  metrics.loss = totals[0];
  metrics.lm_loss = totals[1];
  metrics.mtp_loss = totals[2];
  metrics.balance_loss = totals[3];
  metrics.tokens = static_cast<int64_t>(totals[4]);
  metrics.target_tokens = global.lm;
  metrics.grad_buckets = static_cast<int64_t>(reducer_->plan().buckets.size());
  metrics.grad_buckets_overlapped = reducer_->posted_early();
  if (expert_reducer_) {
    metrics.grad_buckets += static_cast<int64_t>(expert_reducer_->plan().buckets.size());
    metrics.grad_buckets_overlapped += expert_reducer_->posted_early();
  }

  metrics.grad_norm = global_grad_norm();
  metrics.lr = schedule_.at(step);
  const double clip = clip_coefficient(metrics.grad_norm, train.grad_clip());
  if (zero1_) {
    apply_zero1_optimizer(metrics.lr, clip, *zero1_, *reducer_, dp_.get());
    if (expert_zero1_) {
      apply_zero1_optimizer(metrics.lr, clip, *expert_zero1_, *expert_reducer_, edp_.get());
    }
  } else {
    apply_optimizer(metrics.lr, clip);
  }

  // The bias update uses the loads of the whole global batch, identical on every rank.
  update_router_bias_from(model.expert_loads(), {dp}, metrics);

  metrics.step_seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  metrics.tokens_per_second =
      metrics.step_seconds > 0 ? static_cast<double>(metrics.tokens) / metrics.step_seconds : 0.0;
  return metrics;
}

void Trainer::update_router_bias_from(std::vector<models::ExpertLoad> loads,
                                      const std::vector<parallel::Communicator*>& groups,
                                      StepMetrics& metrics) {
  std::vector<int64_t> flat_loads;
  for (const models::ExpertLoad& load : loads) {
    flat_loads.insert(flat_loads.end(), load.tokens_per_expert.begin(),
                      load.tokens_per_expert.end());
  }
  for (parallel::Communicator* group : groups) parallel::dp::sum_over_ranks(group, flat_loads);
  size_t at = 0;
  for (models::ExpertLoad& load : loads) {
    for (int64_t& tokens : load.tokens_per_expert) tokens = flat_loads[at++];
    const double ratio = load_max_over_mean(load.tokens_per_expert);
    metrics.layer_load_max_over_mean.push_back(ratio);
    metrics.expert_load_max_over_mean = std::max(metrics.expert_load_max_over_mean, ratio);
  }
  model_->update_router_bias(loads, config_.train().bias_update_speed());
}

double Trainer::shard_squares(const parallel::dp::Zero1State& state,
                              const parallel::dp::GradReducer& reducer) const {
  const bool count_replicated = tp_rank_ == 0;
  const float* grads = reducer.shard_grads().data<float>();
  double sum = 0.0;
  for (const parallel::dp::ShardSegment& s : state.segments()) {
    if (!s.trained || (s.tp_replicated && !count_replicated)) continue;
    sum += squares(grads + s.shard_offset, s.count);
  }
  return sum;
}

double Trainer::global_grad_norm() const {
  // Every global element counted once: TP-split slices on every TP rank (disjoint), replicated
  // parameters on TP rank 0 only; without ZeRO-1 the reduced gradients are the same on every
  // rank of the reduction group, so this rank's buffer is the whole group's; under ZeRO-1 the
  // shards (disjoint, padding is zero) are summed over the group. Routed experts differ
  // between EP ranks and are added over EP. Then the TP ranks' parts are added.
  const bool count_replicated = tp_rank_ == 0;
  double dense = 0.0, experts = 0.0;
  if (!zero1_) {
    if (tp_size_ == 1 && ep_size_ == 1) {
      dense = sum_of_squares(model_->params().flat_grads());
    } else {
      for (const models::Parameter& param : model_->params().parameters()) {
        if (!param.spec->trained) continue;
        if (tp_replicated(*param.spec, ep_size_) && !count_replicated) continue;
        const double sum = squares(param.grad.data<float>(), param.grad.numel());
        if (ep_size_ > 1 && routed_expert(*param.spec)) {
          experts += sum;
        } else {
          dense += sum;
        }
      }
    }
  } else {
    dense = tp_size_ == 1 && ep_size_ == 1 ? sum_of_squares(reducer_->shard_grads())
                                           : shard_squares(*zero1_, *reducer_);
    dense = parallel::dp::sum_over_ranks(dp_.get(), dense);
    if (expert_zero1_) {
      experts =
          parallel::dp::sum_over_ranks(edp_.get(), shard_squares(*expert_zero1_, *expert_reducer_));
    }
  }
  // The EP group holds every routed expert once (with tp > 1 it spans TP ranks), so the
  // experts' sum is added after the TP sum, not into it.
  if (ep_size_ > 1) experts = parallel::dp::sum_over_ranks(ep_.get(), experts);
  return std::sqrt(parallel::dp::sum_over_ranks(tp_.get(), dense) + experts);
}

void Trainer::apply_optimizer(double lr, double clip_scale) {
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
    if (embedding_copy_ && param.spec->kind == models::ParamKind::kEmbedding) continue;
    const int64_t offset = param.offset;
    adamw_update(values + offset, grads + offset, m + offset, v + offset, param.value.numel(),
                 adam_, lr, step_, param.spec->weight_decay);
  }
}

void Trainer::apply_zero1_optimizer(double lr, double clip_scale, parallel::dp::Zero1State& state,
                                    const parallel::dp::GradReducer& reducer,
                                    parallel::Communicator* comm) {
  const Tensor& flat_values = model_->params().flat_values();
  // The master weights start from the model's (possibly imported) weights; the router bias
  // changes outside the optimizer, so its elements are re-read every step.
  if (!state.master_loaded()) {
    state.load_master(flat_values);
  } else {
    state.refresh_untrained(flat_values);
  }
  float* grads = reducer.shard_grads().data<float>();
  float* master = state.master().data<float>();
  float* m = state.exp_avg().data<float>();
  float* v = state.exp_avg_sq().data<float>();
  const float factor = static_cast<float>(clip_scale);
  for (const parallel::dp::ShardSegment& s : state.segments()) {
    if (!s.trained) continue;
    float* g = grads + s.shard_offset;
    if (clip_scale < 1.0) {
      for (int64_t i = 0; i < s.count; ++i) g[i] *= factor;
    }
    adamw_update(master + s.shard_offset, g, m + s.shard_offset, v + s.shard_offset, s.count, adam_,
                 lr, step_, s.decay);
  }
  parallel::dp::all_gather_weights(comm, reducer.plan(), state.master(), flat_values);
}

int64_t Trainer::optimizer_state_bytes() const {
  if (zero1_) return zero1_->bytes() + (expert_zero1_ ? expert_zero1_->bytes() : 0);
  return static_cast<int64_t>(exp_avg_.nbytes() + exp_avg_sq_.nbytes());
}

EvalMetrics Trainer::evaluate(int64_t batches) const {
  EvalMetrics out;
  if (!eval_sampler_) return out;
  if (partition_) return pipeline_evaluate(batches);
  double ce_sum = 0.0;
  std::vector<int64_t> targets{0};
  for (int64_t b = 0; b < batches; ++b) {
    for (int64_t micro = 0; micro < micro_batches_per_rank(); ++micro) {
      const models::TokenBatch batch = eval_sampler_->rows(b + 1, rows_of(micro));
      const models::ForwardResult result = model_->forward(batch);
      ce_sum += result.losses.lm_ce_sum;
      targets[0] += result.losses.lm_tokens;
    }
  }
  ce_sum = parallel::dp::sum_over_ranks(dp_.get(), ce_sum);
  parallel::dp::sum_over_ranks(dp_.get(), targets);
  out.targets = targets[0];
  out.lm_loss = out.targets > 0 ? ce_sum / static_cast<double>(out.targets) : 0.0;
  return out;
}

}  // namespace trident::train
