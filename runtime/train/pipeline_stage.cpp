#include "runtime/train/pipeline_stage.h"

#include "ops/cpu/elementwise.h"
#include "runtime/core/error.h"

namespace trident::train {

namespace {
float inverse_count(int64_t count, double weight) {
  return count > 0 ? static_cast<float>(weight / static_cast<double>(count)) : 0.0f;
}
}  // namespace

ModelStageCompute::ModelStageCompute(models::DeepSeekV3Model& model,
                                     const PipelinePartition& partition, int rank)
    : model_(model), partition_(partition), rank_(rank) {
  const config::ModelConfig& config = model_.config();
  const int64_t total = model_.num_layers() + model_.mtp_depth();
  load_slot_.assign(static_cast<size_t>(total), -1);
  for (int64_t layer = 0; layer < total; ++layer) {
    if (!models::is_moe_layer(config, layer)) continue;
    load_slot_[static_cast<size_t>(layer)] = static_cast<int64_t>(sums_.loads.size());
    sums_.loads.push_back(models::ExpertLoad{
        layer, std::vector<int64_t>(static_cast<size_t>(config.n_routed_experts()), 0)});
  }
}

void ModelStageCompute::begin_step(const std::vector<models::TokenBatch>& micros,
                                   const models::LossScales& scales) {
  micros_ = &micros;
  scales_ = scales;
  balance_coef_ = models::DeepSeekV3Model::balance_coefficient(scales);
  states_.clear();
  std::vector<models::ExpertLoad> loads = std::move(sums_.loads);
  for (models::ExpertLoad& load : loads) {
    std::fill(load.tokens_per_expert.begin(), load.tokens_per_expert.end(), 0);
  }
  sums_ = PipelineStepSums{};
  sums_.loads = std::move(loads);
}

const StageRange& ModelStageCompute::range(int stage) const {
  TRIDENT_CHECK(partition_.layout.rank_of(stage) == rank_, "stage ", stage, " is not on rank ",
                rank_);
  return partition_.stages[static_cast<size_t>(stage)];
}

const models::TokenBatch& ModelStageCompute::micro(int microbatch) const {
  TRIDENT_CHECK(micros_ != nullptr && microbatch >= 0 &&
                    microbatch < static_cast<int>(micros_->size()),
                "micro-batch ", microbatch, " is not part of this step");
  return (*micros_)[static_cast<size_t>(microbatch)];
}

std::vector<int64_t> ModelStageCompute::activation_shape(int microbatch, int /*stage*/) const {
  const models::TokenBatch& batch = micro(microbatch);
  return {batch.batch * batch.seq_len, model_.dims().hidden};
}

void ModelStageCompute::record_layer(int64_t layer, const models::MoeContext& moe) {
  sums_.balance_sum += moe.balance_sum;
  const int64_t slot = load_slot_[static_cast<size_t>(layer)];
  if (slot < 0) return;
  std::vector<int64_t>& tokens = sums_.loads[static_cast<size_t>(slot)].tokens_per_expert;
  for (size_t e = 0; e < tokens.size() && e < moe.tokens_per_expert.size(); ++e) {
    tokens[e] += moe.tokens_per_expert[e];
  }
}

Tensor ModelStageCompute::forward(int microbatch, int stage, const Tensor& input) {
  const StageRange& r = range(stage);
  const models::TokenBatch& batch = micro(microbatch);
  StageState& state = states_[Key{microbatch, stage}];
  state.layout = model_.sequence_layout(batch.batch, batch.seq_len);
  Tensor x;
  if (r.embedding) {
    state.ids = models::input_ids(batch);
    x = model_.embedding().forward(state.ids);
    sums_.tokens += batch.batch * batch.seq_len;
  } else {
    // The executor may reuse its receive buffers: the layers keep their input.
    TRIDENT_CHECK(input.defined(), "stage ", stage, " got no input activation");
    x = input.clone();
  }
  const Tensor h = model_.forward_layers(r.first_layer, r.last_layer, x, state.layout,
                                         balance_coef_, state.layers);
  for (int64_t l = r.first_layer; l < r.last_layer; ++l) {
    if (model_.layer(l).is_moe()) {
      record_layer(l, state.layers[static_cast<size_t>(l - r.first_layer)].moe);
    }
  }
  if (!r.head) return h;
  run_head(state, batch, h);
  return Tensor{};
}

// The head and the MTP depths exactly as DeepSeekV3Model::forward runs them.
void ModelStageCompute::run_head(StageState& state, const models::TokenBatch& batch,
                                 const Tensor& h_final) {
  const int64_t D = model_.mtp_depth();
  const models::HeadForward main =
      model_.head().forward(h_final, models::shifted_targets(batch, 1),
                            inverse_count(scales_.lm_targets, 1.0), state.head);
  if (scales_.lm_targets > 0) {
    sums_.lm_loss += main.ce.loss_sum / static_cast<double>(scales_.lm_targets);
  }
  state.mtp.resize(static_cast<size_t>(D));
  Tensor h_prev = main.normed;
  for (int64_t d = 1; d <= D; ++d) {
    models::MtpContext& m = state.mtp[static_cast<size_t>(d - 1)];
    const int64_t count = scales_.mtp_targets[static_cast<size_t>(d - 1)];
    m.ids = models::shifted_ids(batch, d);
    const Tensor h = model_.mtp(d).forward(model_.embedding().forward(m.ids), h_prev,
                                           state.layout, balance_coef_, m);
    const models::HeadForward out = model_.mtp(d).head().forward(
        h, models::shifted_targets(batch, d + 1),
        inverse_count(count, scales_.mtp_weight / static_cast<double>(D)), m.head);
    if (count > 0) {
      sums_.mtp_loss +=
          out.ce.loss_sum / static_cast<double>(count) / static_cast<double>(D);
    }
    if (model_.mtp(d).layer().is_moe()) record_layer(model_.num_layers() + d - 1, m.layer.moe);
    h_prev = h;
  }
}

Tensor ModelStageCompute::backward_input(int microbatch, int stage, const Tensor& output_grad) {
  const StageRange& r = range(stage);
  const auto it = states_.find(Key{microbatch, stage});
  TRIDENT_CHECK(it != states_.end(), "B(", microbatch, ", ", stage, ") before its F");
  StageState& state = it->second;
  Tensor d;
  if (r.head) {
    // As DeepSeekV3Model::backward: MTP depths from the last, then the main head.
    Tensor d_prev;
    for (int64_t depth = model_.mtp_depth(); depth >= 1; --depth) {
      models::MtpContext& m = state.mtp[static_cast<size_t>(depth - 1)];
      const models::MtpModule& module = model_.mtp(depth);
      Tensor dh = module.head().backward_input(m.head);
      if (d_prev.defined()) ops::cpu::axpy(1.0f, d_prev, dh);
      const models::MtpInputGradients grads = module.backward_input(dh, m);
      module.head().backward_weight(m.head);
      module.backward_weight(m);
      model_.embedding().backward_weight(m.ids, grads.embedded);
      d_prev = grads.h_prev;
    }
    state.mtp.clear();
    d = model_.head().backward_input(state.head, d_prev.defined() ? &d_prev : nullptr);
    model_.head().backward_weight(state.head);
    state.head = models::HeadContext{};
  } else {
    TRIDENT_CHECK(output_grad.defined(), "B(", microbatch, ", ", stage, ") got no gradient");
    d = output_grad.clone();
  }
  d = model_.backward_layers(r.first_layer, r.last_layer, d, state.layers, false);
  if (r.embedding) {
    state.embedding_grad = d;
    return Tensor{};
  }
  return d;
}

void ModelStageCompute::backward_weight(int microbatch, int stage) {
  const StageRange& r = range(stage);
  const auto it = states_.find(Key{microbatch, stage});
  TRIDENT_CHECK(it != states_.end(), "W(", microbatch, ", ", stage, ") before its F");
  StageState& state = it->second;
  for (int64_t l = r.last_layer - 1; l >= r.first_layer; --l) {
    model_.layer(l).backward_weight(state.layers[static_cast<size_t>(l - r.first_layer)]);
  }
  if (r.embedding) {
    TRIDENT_CHECK(state.embedding_grad.defined(), "W(", microbatch, ", 0) before its B");
    model_.embedding().backward_weight(state.ids, state.embedding_grad);
  }
  states_.erase(it);
}

}  // namespace trident::train
