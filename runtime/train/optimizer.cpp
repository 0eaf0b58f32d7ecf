#include "runtime/train/optimizer.h"

#include <algorithm>
#include <cmath>

#include "ops/ops.h"
#include "parallel/comm/sum_in_rank_order.h"
#include "parallel/comm/tags.h"
#include "runtime/core/error.h"
#include "runtime/core/profiler.h"

namespace trident::train {

double clip_coefficient(double global_norm, double max_norm) {
  if (max_norm <= 0.0) return 1.0;
  return std::min(1.0, max_norm / (global_norm + 1e-6));
}

namespace {
constexpr int64_t kMiB = 1024 * 1024;
const char* const kEmbedding = "model.embed_tokens.weight";
}  // namespace

Optimizer::Optimizer(models::DeepSeekV3Model& model, const parallel::ParallelContext& context,
                     const models::parallelize::PipelinePartition& partition,
                     const OptimizerSettings& settings)
    : model_(model), context_(context), settings_(settings) {
  using models::parallelize::GradientBlocks;
  using parallel::MeshAxis;
  const models::ParameterStore& store = model.params();
  const std::vector<models::Parameter>& params = store.parameters();
  const GradientBlocks blocks(model.num_layers());
  embedding_block_ = blocks.embedding();

  if (settings.embedding_copy && partition.embedding_copy(model.mtp_depth())) {
    const int pp_rank = context.rank(MeshAxis::Pp);
    if (pp_rank == partition.last_rank()) {
      copy_role_ = CopyRole::Copy;
      copy_peer_ = partition.first_rank();
    } else if (pp_rank == partition.first_rank()) {
      copy_role_ = CopyRole::Original;
      copy_peer_ = partition.last_rank();
    }
  }

  const int tp_rank = context.rank(MeshAxis::Tp);
  std::vector<parallel::dp::ParamExtent> extents;
  std::vector<MeshAxis> axis_of;
  for (const models::Parameter& param : params) {
    const models::ParamSpec& spec = *param.spec;
    const models::parallelize::GradientSharding sharding =
        models::parallelize::gradient_sharding(spec, context.sizes());
    parallel::dp::ParamExtent extent;
    extent.offset = param.offset;
    extent.numel = param.value.numel();
    extent.block = blocks.of(spec);
    extent.trained = spec.trained;
    extent.decay = spec.weight_decay;
    extent.tp_replicated = !sharding.distinct_over_tp;
    extents.push_back(extent);
    axis_of.push_back(sharding.reduce_over);
    const bool copy = copy_role_ == CopyRole::Copy && spec.kind == models::ParamKind::kEmbedding;
    updated_.push_back(spec.trained && !copy);
    counted_.push_back(spec.trained && !copy && context.rank(sharding.reduce_over) == 0 &&
                       (sharding.distinct_over_tp || tp_rank == 0));
  }

  const int64_t bucket_bytes = settings.bucket_bytes > 0
                                   ? settings.bucket_bytes
                                   : std::max<int64_t>(1, settings.bucket_mb) * kMiB;
  const int64_t bucket_elements =
      std::max<int64_t>(1, bucket_bytes / static_cast<int64_t>(sizeof(float)));
  for (const MeshAxis axis : {MeshAxis::Dp, MeshAxis::Edp}) {
    std::vector<bool> member(params.size());
    std::vector<parallel::dp::ParamExtent> member_extents;
    for (size_t i = 0; i < params.size(); ++i) {
      const bool copy =
          copy_role_ == CopyRole::Copy && params[i].spec->kind == models::ParamKind::kEmbedding;
      member[i] = axis_of[i] == axis && !copy;
      if (member[i]) member_extents.push_back(extents[i]);
    }
    if (member_extents.empty()) continue;
    Group group;
    group.axis = axis;
    group.comm = context.group(axis);
    parallel::dp::BucketPlan plan =
        parallel::dp::plan_buckets(extents, store.numel(), bucket_elements, context.size(axis),
                                   parallel::dp::member_ranges(extents, member));
    if (settings.zero1) {
      group.zero1 = std::make_unique<parallel::dp::Zero1State>(
          plan, context.rank(axis), member_extents, settings.moments, store.device());
    }
    group.reducer = std::make_unique<parallel::dp::GradReducer>(group.comm, store.flat_grads(),
                                                                std::move(plan), settings.zero1);
    groups_.push_back(std::move(group));
  }
  if (!settings.zero1) {
    exp_avg_ = Tensor::zeros({store.numel()}, settings.moments, store.device());
    exp_avg_sq_ = Tensor::zeros({store.numel()}, settings.moments, store.device());
  }
  nonfinite_ = Tensor::zeros({1}, DType::I64, store.device());
}

void Optimizer::begin_step() {
  TRIDENT_PROFILE_SCOPE("optimizer: zero gradients");
  model_.params().zero_grad();
  for (Group& g : groups_) g.reducer->start_step();
}

void Optimizer::block_final(int block) {
  // Stage 0's embedding is final only once the copy's gradient has been added to it.
  if (block == embedding_block_ && copy_role_ == CopyRole::Original) return;
  for (Group& g : groups_) g.reducer->block_final(block);
}

void Optimizer::send_copy_gradient() {
  parallel::comm::Communicator* pp = context_.pp();
  if (copy_role_ == CopyRole::Copy) {
    pp->send(model_.params().grad(kEmbedding), copy_peer_,
             parallel::comm::tags::kEmbeddingCopyGradient)
        ->wait();
  } else if (copy_role_ == CopyRole::Original) {
    Tensor& grad = model_.params().grad(kEmbedding);
    const Tensor theirs = Tensor::empty(grad.shape(), grad.dtype(), grad.device());
    pp->recv(theirs, copy_peer_, parallel::comm::tags::kEmbeddingCopyGradient)->wait();
    ops::axpy(1.0f, theirs, grad);
  }
}

void Optimizer::finish_gradients() {
  send_copy_gradient();
  if (copy_role_ == CopyRole::Original) {
    for (Group& g : groups_) g.reducer->block_final(embedding_block_);
  }
  for (Group& g : groups_) g.reducer->finish();
}

double Optimizer::local_squares() const {
  const std::vector<models::Parameter>& params = model_.params().parameters();
  std::vector<Tensor> counted;
  if (!settings_.zero1) {
    for (size_t i = 0; i < params.size(); ++i) {
      if (counted_[i]) counted.push_back(params[i].grad);
    }
    return ops::sum_of_squares(counted);
  }
  // Every rank's shard of a reduced bucket holds different elements; of TP ranks holding the
  // same parameter, one counts it.
  const bool tp_first = context_.rank(parallel::MeshAxis::Tp) == 0;
  for (const Group& g : groups_) {
    const Tensor& grads = g.reducer->shard_grads();
    for (const parallel::dp::ShardSegment& s : g.zero1->segments()) {
      if (!s.trained || (s.tp_replicated && !tp_first)) continue;
      counted.push_back(grads.narrow(s.shard_offset, s.shard_offset + s.count));
    }
  }
  return ops::sum_of_squares(counted);
}

double Optimizer::grad_norm() const {
  TRIDENT_PROFILE_SCOPE("optimizer: gradient norm");
  return std::sqrt(parallel::comm::sum_in_rank_order(context_.world(), local_squares()));
}

int64_t Optimizer::update(double lr, double clip, int64_t adam_step) {
  TRIDENT_PROFILE_SCOPE("optimizer: AdamW update");
  models::ParameterStore& store = model_.params();
  ops::AdamWStep adam{lr, adam_step, true, static_cast<float>(clip)};
  nonfinite_.zero();
  if (!settings_.zero1) {
    const Tensor& values = store.flat_values();
    const Tensor& grads = store.flat_grads();
    const std::vector<models::Parameter>& params = store.parameters();
    for (size_t i = 0; i < params.size(); ++i) {
      if (!updated_[i]) continue;
      const int64_t begin = params[i].offset;
      const int64_t end = begin + params[i].value.numel();
      adam.decay = params[i].spec->weight_decay;
      Tensor value = values.narrow(begin, end);
      Tensor m = exp_avg_.narrow(begin, end);
      Tensor v = exp_avg_sq_.narrow(begin, end);
      ops::adamw_update(settings_.adam, adam, value, grads.narrow(begin, end), m, v, &nonfinite_);
    }
  } else {
    const Tensor& flat_values = store.flat_values();
    for (Group& g : groups_) {
      parallel::dp::Zero1State& state = *g.zero1;
      // The masters start from the model's (possibly imported) weights; the router bias
      // changes outside the optimizer, so its elements are re-read every step.
      if (!state.master_loaded()) {
        state.load_master(flat_values);
      } else {
        state.refresh_untrained(flat_values);
      }
      const Tensor& grads = g.reducer->shard_grads();
      for (const parallel::dp::ShardSegment& s : state.segments()) {
        if (!s.trained) continue;
        const int64_t begin = s.shard_offset;
        const int64_t end = begin + s.count;
        adam.decay = s.decay;
        Tensor master = state.master().narrow(begin, end);
        Tensor m = state.exp_avg().narrow(begin, end);
        Tensor v = state.exp_avg_sq().narrow(begin, end);
        ops::adamw_update(settings_.adam, adam, master, grads.narrow(begin, end), m, v,
                          &nonfinite_);
      }
      parallel::dp::all_gather_weights(g.comm, g.reducer->plan(), state.master(), flat_values);
    }
  }
  refresh_copy();
  store.refresh_compute_weights();
  return nonfinite_.on(Device::CPU).data<int64_t>()[0];  // the update's one host read
}

void Optimizer::refresh_copy() {
  parallel::comm::Communicator* pp = context_.pp();
  models::ParameterStore& store = model_.params();
  if (copy_role_ == CopyRole::Original) {
    pp->send(store.get(kEmbedding).value, copy_peer_, parallel::comm::tags::kEmbeddingCopyValue)
        ->wait();
  } else if (copy_role_ == CopyRole::Copy) {
    pp->recv(store.get(kEmbedding).value, copy_peer_, parallel::comm::tags::kEmbeddingCopyValue)
        ->wait();
  }
}

void Optimizer::reload_master_weights() {
  for (Group& g : groups_) {
    if (g.zero1) g.zero1->load_master(model_.params().flat_values());
  }
}

ReductionStats Optimizer::reduction_stats() const {
  ReductionStats stats;
  for (const Group& g : groups_) {
    stats.buckets += static_cast<int64_t>(g.reducer->plan().buckets.size());
    stats.buckets_overlapped += g.reducer->posted_early();
  }
  return stats;
}

int64_t Optimizer::state_bytes() const {
  if (!settings_.zero1) return static_cast<int64_t>(exp_avg_.nbytes() + exp_avg_sq_.nbytes());
  int64_t bytes = 0;
  for (const Group& g : groups_) bytes += g.zero1->bytes();
  return bytes;
}

}  // namespace trident::train
