// The trainer's pipeline-parallel step (docs/pipeline.md).
//
// Every rank of a pipeline group reads the same micro-batches (its data-parallel rows: the
// first stage needs the input ids, the last the targets) and computes the same global target
// counts, so every stage normalises by the global batch exactly as Trainer::step does. The
// executor runs parallel.schedule's actions with ModelStageCompute; afterwards each rank holds
// the complete gradients of its stages' parameters summed over its micro-batches, and the rest
// is the ordinary step: reduction over dp (routed experts over edp), the global gradient norm
// (now also summed over pp), AdamW, and the router-bias update with the loads summed over pp
// and dp. Losses are known on the last stage and balance sums on every stage: summing them
// over pp then dp gives every rank the same metrics.
//
// The embedding lives on stage 0, but the MTP modules on the last stage embed their shifted
// inputs with the same table. When the two stages are on different ranks, the last stage's
// rank holds a second copy of model.embed_tokens (same initialisation, hence the same values)
// that follows stage 0's: after the pipeline it sends its gradient of the table to stage 0's
// rank, which adds it to its own before the dp reduction; only stage 0's rank reduces,
// clips and updates the table (its dp group holds the moments, under ZeRO-1 sharded as any
// other parameter), and after the optimizer it sends the updated table back, which the last
// stage's rank stores as its copy. The copy is out of the last stage's buckets, shards and
// optimizer and out of the gradient norm. DualPipeV puts stage 0 and the last stage on rank 0,
// where no copy is needed.
//
// Why not let both ranks reduce and update their copy: each rank plans its buckets over its
// own parameters, so the copy sits at another offset in its buckets than the original does,
// and a reduction whose order depends on the position (a ring reduce-scatter or all-reduce, as
// NCCL runs them; an all-reduce that cuts the bucket into per-rank segments) adds the dp ranks'
// gradients in another order on the two stages: with dp > 2 the copies then drift apart by
// fp32 round-off, and one weight becomes two. Sending the table back makes the copy stage 0's
// bits whatever the backend does, and costs one V×H/tp message per step per pipeline (from
// stage 0's rank to the last stage's), while saving the last stage the reduction of the copy's
// gradient (V×H/tp) and its optimizer state.
#include <chrono>
#include <cmath>

#include "models/deepseek_v3/loss.h"
#include "ops/cpu/elementwise.h"
#include "parallel/dp/reduce_sum.h"
#include "runtime/core/error.h"
#include "runtime/train/trainer.h"

namespace trident::train {

namespace {
// A tag the executor's activation and gradient streams do not use.
constexpr int kEmbeddingGradTag = 32700;
constexpr int kEmbeddingValueTag = 32702;
const char* const kEmbedding = "model.embed_tokens.weight";

double squares(const Tensor& t) {
  const float* values = t.data<float>();
  double sum = 0.0;
  for (int64_t i = 0; i < t.numel(); ++i) sum += static_cast<double>(values[i]) * values[i];
  return sum;
}
}  // namespace

void Trainer::setup_pipeline() {
  const auto& par = config_.parallel();
  const int64_t micros = micro_batches_per_rank();
  TRIDENT_USER_CHECK(par.microbatches() == 0 || par.microbatches() == micros,
                     "parallel.microbatches = ", par.microbatches(),
                     " but train.global_batch / (train.micro_batch × parallel.dp) = ", micros,
                     " (leave parallel.microbatches 0 to take it from the batch sizes)");
  pp::ScheduleRequest request;
  request.name = par.schedule().empty() ? "1f1b" : par.schedule();
  request.pp = pp_->size();
  request.microbatches = static_cast<int>(micros);
  request.virtual_stages = partition_->layout.chunks;
  const int minimum = pp::min_microbatches(request.name, request.pp);
  TRIDENT_USER_CHECK(micros >= minimum, "parallel.schedule = '", request.name, "' with parallel.pp = ",
                     request.pp, " needs at least ", minimum,
                     " micro-batches per step, but train.global_batch / (train.micro_batch × "
                     "parallel.dp) = ", micros, " (raise train.global_batch)");
  executor_ = std::make_unique<pp::PipelineExecutor>(pp::make_schedule(request), pp_);
  stage_compute_ = std::make_unique<ModelStageCompute>(*model_, *partition_, pp_->rank());
}

void Trainer::send_embedding_copy_grad() {
  models::DeepSeekV3Model& model = *model_;
  if (!partition_->embedding_copy(model.mtp_depth())) return;
  const int me = pp_->rank();
  const int first = partition_->first_rank();
  const int last = partition_->last_rank();
  if (me == last) {
    pp_->send(model.params().grad(kEmbedding), first, kEmbeddingGradTag)->wait();
  } else if (me == first) {
    Tensor& grad = model.params().grad(kEmbedding);
    const Tensor theirs = Tensor::empty(grad.shape());
    pp_->recv(theirs, last, kEmbeddingGradTag)->wait();
    ops::cpu::axpy(1.0f, theirs, grad);
  }
}

void Trainer::refresh_embedding_copy() {
  models::DeepSeekV3Model& model = *model_;
  if (!partition_->embedding_copy(model.mtp_depth())) return;
  const int me = pp_->rank();
  const int first = partition_->first_rank();
  const int last = partition_->last_rank();
  if (me == first) {
    pp_->send(model.params().get(kEmbedding).value, last, kEmbeddingValueTag)->wait();
  } else if (me == last) {
    pp_->recv(model.params().get(kEmbedding).value, first, kEmbeddingValueTag)->wait();
  }
}

StepMetrics Trainer::pipeline_step() {
  const auto start = std::chrono::steady_clock::now();
  const auto& train = config_.train();
  const int64_t step = ++step_;
  models::DeepSeekV3Model& model = *model_;
  parallel::Communicator* dp = dp_.get();
  parallel::Communicator* pp = pp_.get();
  const int64_t depth = model.mtp_depth();

  std::vector<models::TokenBatch> micros;
  models::TargetCounts local;
  local.mtp.assign(static_cast<size_t>(depth), 0);
  for (int64_t micro = 0; micro < micro_batches_per_rank(); ++micro) {
    micros.push_back(sampler_->rows(step, rows_of(micro)));
    local.add(models::count_targets(micros.back(), depth));
  }
  std::vector<int64_t> counts{local.lm};
  counts.insert(counts.end(), local.mtp.begin(), local.mtp.end());
  counts.push_back(local.sequences);
  parallel::dp::sum_over_ranks(dp, counts);
  models::TargetCounts global;
  global.lm = counts.front();
  global.mtp.assign(counts.begin() + 1, counts.end() - 1);
  global.sequences = counts.back();
  const models::LossScales scales =
      models::make_loss_scales(global, train.mtp_loss_weight(), train.aux_loss_alpha());

  model.params().zero_grad();
  stage_compute_->begin_step(micros, scales);
  executor_->run(*stage_compute_);
  send_embedding_copy_grad();
  // Gradients are complete only now: the buckets go out together.
  reducer_->start_step();
  if (expert_reducer_) expert_reducer_->start_step();
  reducer_->finish();
  if (expert_reducer_) expert_reducer_->finish();

  const PipelineStepSums& sums = stage_compute_->sums();
  std::vector<double> local_sums{sums.lm_loss, sums.mtp_loss, sums.balance_sum,
                                 static_cast<double>(sums.tokens)};
  const std::vector<double> totals = parallel::dp::sum_over_ranks(
      dp, parallel::dp::sum_over_ranks(pp, local_sums));
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
  metrics.grad_buckets = static_cast<int64_t>(reducer_->plan().buckets.size());
  if (expert_reducer_) {
    metrics.grad_buckets += static_cast<int64_t>(expert_reducer_->plan().buckets.size());
  }

  metrics.grad_norm = pipeline_grad_norm();
  metrics.lr = schedule_.at(step);
  const double clip = clip_coefficient(metrics.grad_norm, train.grad_clip());
  if (zero1_) {
    // Each pipeline rank shards its own stages' optimizer state over its dp (edp) group.
    apply_zero1_optimizer(metrics.lr, clip, *zero1_, *reducer_, dp_.get());
    if (expert_zero1_) {
      apply_zero1_optimizer(metrics.lr, clip, *expert_zero1_, *expert_reducer_, edp_.get());
    }
  } else {
    apply_optimizer(metrics.lr, clip);
  }
  refresh_embedding_copy();

  // Each rank recorded the loads of its own layers: the sum over pp and dp is the global one.
  update_router_bias_from(sums.loads, {pp, dp}, metrics);

  metrics.step_seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  metrics.tokens_per_second =
      metrics.step_seconds > 0 ? static_cast<double>(metrics.tokens) / metrics.step_seconds : 0.0;
  return metrics;
}

double Trainer::pipeline_grad_norm() const {
  // As global_grad_norm without ZeRO-1: every element once (TP-replicated ones on TP rank 0,
  // routed experts summed over EP), plus the sum over the pipeline ranks, which hold disjoint
  // parameters except the embedding copy (counted on stage 0's rank only).
  const bool count_replicated = tp_rank_ == 0;
  double dense = 0.0, experts = 0.0;
  if (zero1_) {
    // ZeRO-1: this rank's shards of the reduced gradients (segments split at parameter
    // boundaries), summed over the reduction groups; the embedding copy has no shard.
    auto shard_sum = [&](const parallel::dp::Zero1State& state,
                         const parallel::dp::GradReducer& reducer) {
      const float* grads = reducer.shard_grads().data<float>();
      double sum = 0.0;
      for (const parallel::dp::ShardSegment& s : state.segments()) {
        if (!s.trained || (s.tp_replicated && !count_replicated)) continue;
        for (int64_t i = 0; i < s.count; ++i) {
          sum += static_cast<double>(grads[s.shard_offset + i]) * grads[s.shard_offset + i];
        }
      }
      return sum;
    };
    dense = parallel::dp::sum_over_ranks(dp_.get(), shard_sum(*zero1_, *reducer_));
    if (expert_zero1_) {
      experts = parallel::dp::sum_over_ranks(edp_.get(),
                                             shard_sum(*expert_zero1_, *expert_reducer_));
    }
    if (ep_size_ > 1) experts = parallel::dp::sum_over_ranks(ep_.get(), experts);
    const double total = parallel::dp::sum_over_ranks(tp_.get(), dense) + experts;
    return std::sqrt(parallel::dp::sum_over_ranks(pp_.get(), total));
  }
  for (const models::Parameter& param : model_->params().parameters()) {
    const models::ParamSpec& spec = *param.spec;
    if (!spec.trained) continue;
    const bool routed = spec.kind == models::ParamKind::kExpert;
    const bool replicated = spec.placement.tp == models::TpSplit::kReplicated || routed;
    if (replicated && !count_replicated) continue;
    if (embedding_copy_ && spec.kind == models::ParamKind::kEmbedding) continue;
    (ep_size_ > 1 && routed ? experts : dense) += squares(param.grad);
  }
  if (ep_size_ > 1) experts = parallel::dp::sum_over_ranks(ep_.get(), experts);
  const double total = parallel::dp::sum_over_ranks(tp_.get(), dense + experts);
  return std::sqrt(parallel::dp::sum_over_ranks(pp_.get(), total));
}

}  // namespace trident::train
