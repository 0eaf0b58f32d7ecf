#include "runtime/train/model_stage_compute.h"

#include <algorithm>

#include "runtime/core/error.h"

namespace trident::train {

void StageRecord::add_moe(int64_t layer, const models::MoeContext& moe) {
  balance_sum += moe.balance_sum;
  const int64_t slot = load_slot[static_cast<size_t>(layer)];
  if (slot < 0) return;
  std::vector<int64_t>& tokens = loads[static_cast<size_t>(slot)].tokens_per_expert;
  for (size_t e = 0; e < tokens.size() && e < moe.tokens_per_expert.size(); ++e) {
    tokens[e] += moe.tokens_per_expert[e];
  }
}

void StageRecord::clear() {
  balance_sum = 0.0;
  tokens = 0;
  for (models::ExpertLoad& load : loads) {
    std::fill(load.tokens_per_expert.begin(), load.tokens_per_expert.end(), 0);
  }
}

ModelStageCompute::ModelStageCompute(models::DeepSeekV3Model& model,
                                     const models::parallelize::PipelinePartition& partition,
                                     int pp_rank)
    : model_(model), partition_(partition), blocks_(model.num_layers()), rank_(pp_rank) {
  const config::ModelConfig& config = model_.config();
  const int64_t total = model_.num_layers() + model_.mtp_depth();
  record_.load_slot.assign(static_cast<size_t>(total), -1);
  for (int64_t layer = 0; layer < total; ++layer) {
    if (!models::is_moe_layer(config, layer)) continue;
    record_.load_slot[static_cast<size_t>(layer)] = static_cast<int64_t>(record_.loads.size());
    record_.loads.push_back(models::ExpertLoad{
        layer, std::vector<int64_t>(static_cast<size_t>(config.n_routed_experts()), 0)});
  }
}

void ModelStageCompute::begin_step(const std::vector<StageInput>& micros, StageObjective& objective,
                                   float balance_coef) {
  micros_ = &micros;
  objective_ = &objective;
  balance_coef_ = balance_coef;
  states_.clear();
  record_.clear();
}

const models::parallelize::StageRange& ModelStageCompute::range(int stage) const {
  TRIDENT_CHECK(partition_.layout.rank_of(stage) == rank_, "stage ", stage, " is not on rank ",
                rank_);
  return partition_.stages[static_cast<size_t>(stage)];
}

const StageInput& ModelStageCompute::micro(int microbatch) const {
  TRIDENT_CHECK(
      micros_ != nullptr && microbatch >= 0 && microbatch < static_cast<int>(micros_->size()),
      "micro-batch ", microbatch, " is not part of this step");
  return (*micros_)[static_cast<size_t>(microbatch)];
}

std::vector<int64_t> ModelStageCompute::activation_shape(int microbatch, int /*stage*/) const {
  const StageInput& input = micro(microbatch);
  return {input.batch * input.seq, model_.dims().hidden};
}

Tensor ModelStageCompute::forward(int microbatch, int stage, const Tensor& input) {
  const models::parallelize::StageRange& r = range(stage);
  StageState& state = states_[Key{microbatch, stage}];
  const Tensor x = stage_input(microbatch, stage, input, state);
  const Tensor h = model_.forward_layers(r.first_layer, r.last_layer, x, state.layout,
                                         balance_coef_, state.layers);
  return stage_output(microbatch, stage, h, state);
}

Tensor ModelStageCompute::stage_input(int microbatch, int stage, const Tensor& input,
                                      StageState& state) {
  const models::parallelize::StageRange& r = range(stage);
  const StageInput& in = micro(microbatch);
  state.layout = model_.sequence_layout(in.batch, in.seq);
  if (r.embedding) {
    // The batch's token ids come from the host; the embedding reads them where the weights are.
    state.ids = in.ids.on(model_.params().device());
    record_.tokens += in.batch * in.seq;
    return model_.embedding().forward(state.ids);
  }
  // The executor may reuse its receive buffers: the layers keep their input.
  TRIDENT_CHECK(input.defined(), "stage ", stage, " got no input activation");
  return input.clone();
}

Tensor ModelStageCompute::stage_output(int microbatch, int stage, const Tensor& h,
                                       StageState& state) {
  const models::parallelize::StageRange& r = range(stage);
  for (int64_t l = r.first_layer; l < r.last_layer; ++l) {
    if (model_.layer(l).is_moe()) {
      record_.add_moe(l, state.layers[static_cast<size_t>(l - r.first_layer)].moe);
    }
  }
  if (!r.head) return h;
  objective_->forward(microbatch, h, state.layout, balance_coef_, record_);
  return Tensor{};
}

ModelStageCompute::StageState& ModelStageCompute::state_of(int microbatch, int stage,
                                                            const char* action) {
  const auto it = states_.find(Key{microbatch, stage});
  TRIDENT_CHECK(it != states_.end(), action, "(", microbatch, ", ", stage, ") before its F");
  return it->second;
}

Tensor ModelStageCompute::output_gradient(const models::parallelize::StageRange& r,
                                          int microbatch, const Tensor& output_grad) {
  if (r.head) {
    Tensor d = objective_->backward(microbatch);
    for (const int block : objective_->gradient_blocks(blocks_)) {
      // A stage that also embeds (one stage) writes the embedding again further down.
      if (!(r.embedding && block == blocks_.embedding())) block_written(block);
    }
    return d;
  }
  TRIDENT_CHECK(output_grad.defined(), "B(", microbatch, ") got no gradient");
  return output_grad.clone();
}

Tensor ModelStageCompute::backward_input(int microbatch, int stage, const Tensor& output_grad) {
  const models::parallelize::StageRange& r = range(stage);
  StageState& state = state_of(microbatch, stage, "B");
  Tensor d = output_gradient(r, microbatch, output_grad);
  d = model_.backward_layers(r.first_layer, r.last_layer, d, state.layers, false);
  return input_gradient(r, state, d);
}

Tensor ModelStageCompute::input_gradient(const models::parallelize::StageRange& r,
                                         StageState& state, const Tensor& d) {
  if (r.embedding) {
    state.embedding_grad = d;
    return Tensor{};
  }
  return d;
}

std::pair<Tensor, Tensor> ModelStageCompute::forward_backward_input(
    int forward_microbatch, int forward_stage, const Tensor& input, int backward_microbatch,
    int backward_stage, const Tensor& output_grad) {
  const models::parallelize::StageRange& fr = range(forward_stage);
  const models::parallelize::StageRange& br = range(backward_stage);
  StageState& backward_state = state_of(backward_microbatch, backward_stage, "B");
  // The backward's head (the loss's gradient) before the pair: its layers need it.
  const Tensor d = output_gradient(br, backward_microbatch, output_grad);
  StageState& forward_state = states_[Key{forward_microbatch, forward_stage}];
  const Tensor x = stage_input(forward_microbatch, forward_stage, input, forward_state);
  auto [h, dx] = model_.forward_backward_layers(
      fr.first_layer, fr.last_layer, x, forward_state.layout, balance_coef_, forward_state.layers,
      br.first_layer, br.last_layer, d, backward_state.layers);
  Tensor out = stage_output(forward_microbatch, forward_stage, h, forward_state);
  return {std::move(out), input_gradient(br, backward_state, dx)};
}

void ModelStageCompute::backward_weight(int microbatch, int stage) {
  const models::parallelize::StageRange& r = range(stage);
  StageState& state = state_of(microbatch, stage, "W");
  // Each layer's weight gradients are final for this micro-batch once its backward_weight ran:
  // reporting them one by one lets the last micro-batch's reduction overlap the rest of W.
  for (int64_t l = r.last_layer - 1; l >= r.first_layer; --l) {
    model_.layer(l).backward_weight(state.layers[static_cast<size_t>(l - r.first_layer)]);
    block_written(blocks_.layer(l));
  }
  if (r.embedding) {
    TRIDENT_CHECK(state.embedding_grad.defined(), "W(", microbatch, ", 0) before its B");
    model_.embedding().backward_weight(state.ids, state.embedding_grad);
    block_written(blocks_.embedding());
  }
  states_.erase(Key{microbatch, stage});
}

Tensor ModelStageCompute::backward_full(int microbatch, int stage, const Tensor& output_grad) {
  const models::parallelize::StageRange& r = range(stage);
  StageState& state = state_of(microbatch, stage, "B");
  Tensor d = output_gradient(r, microbatch, output_grad);
  for (int64_t l = r.last_layer - 1; l >= r.first_layer; --l) {
    models::DecoderLayerContext& ctx = state.layers[static_cast<size_t>(l - r.first_layer)];
    d = model_.layer(l).backward_input(d, ctx);
    model_.layer(l).backward_weight(ctx);
    block_written(blocks_.layer(l));
  }
  if (r.embedding) {
    model_.embedding().backward_weight(state.ids, d);
    block_written(blocks_.embedding());
    d = Tensor{};
  }
  states_.erase(Key{microbatch, stage});
  return d;
}

std::vector<int> ModelStageCompute::gradient_blocks(parallel::pp::ActionKind kind,
                                                    int stage) const {
  const models::parallelize::StageRange& r = partition_.stages[static_cast<size_t>(stage)];
  std::vector<int> out;
  if (kind == parallel::pp::ActionKind::BackwardInput && r.head && objective_ != nullptr) {
    out = objective_->gradient_blocks(blocks_);
  } else if (kind == parallel::pp::ActionKind::BackwardWeight) {
    for (int64_t l = r.first_layer; l < r.last_layer; ++l) out.push_back(blocks_.layer(l));
    if (r.embedding) out.push_back(blocks_.embedding());
  }
  return out;
}

}  // namespace trident::train
