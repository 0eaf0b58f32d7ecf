#include "models/deepseek_v3/model.h"

#include <algorithm>
#include <tuple>
#include <utility>

#include "models/deepseek_v3/saved_activations.h"
#include "ops/ops.h"
#include "runtime/core/error.h"

namespace trident::models {

bool PipelineHolding::holds(const ParamSpec& spec) const {
  if (spec.mtp_depth >= 1) return head;
  if (spec.kind == ParamKind::kEmbedding) return embedding;
  if (spec.kind == ParamKind::kHead || spec.name == "model.norm.weight") return head;
  if (spec.layer >= 0) return holds_layer(spec.layer);
  return true;
}

namespace {

// Validates the TP request against the model before anything is allocated.
parallel::tp::TpGroup checked_tp_group(const config::ModelConfig& config,
                                       const ModelParallel& parallel) {
  const parallel::tp::TpGroup tp = parallel::tp::make_tp_group(
      parallel.tp, parallel.tp_rank, parallel.tp_size, parallel.tp_traffic);
  TRIDENT_USER_CHECK(config.num_attention_heads() % tp.size == 0, "parallel.tp (", tp.size,
                     ") must divide model.num_attention_heads (", config.num_attention_heads(),
                     "): attention is split by whole heads");
  TRIDENT_USER_CHECK(config.vocab_size() % tp.size == 0, "parallel.tp (", tp.size,
                     ") must divide model.vocab_size (", config.vocab_size(),
                     "): the embedding and lm_head are split by vocabulary rows");
  return tp;
}

// The EP setup's expert selection with this rank's TP slice and pipeline stages.
ShardSelection combined_selection(const parallel::tp::TpGroup& tp, ShardSelection selection,
                                  const PipelineHolding& holding) {
  selection.tp_rank = tp.rank;
  selection.tp_size = tp.size;
  auto include = std::move(selection.include);
  selection.include = [holding, include](const ParamSpec& spec) {
    return holding.holds(spec) && (!include || include(spec));
  };
  return selection;
}

// The weight if this rank holds it; an empty Weight (never used) otherwise.
Weight held_weight(ParameterStore& store, const std::string& name) {
  return store.has(name) ? weight_of(store, name) : Weight{};
}

// lm_head's logits stay fp32 whatever the activations: they feed the fp32 softmax and loss.
Weight lm_head_weight(ParameterStore& store) {
  return with_fp32_outputs(held_weight(store, "lm_head.weight"));
}

}  // namespace

DeepSeekV3Model::DeepSeekV3Model(const config::ModelConfig& config, uint64_t seed)
    : DeepSeekV3Model(config, seed, ModelParallel{}, ExpertParallelSetup{}) {}

DeepSeekV3Model::DeepSeekV3Model(const config::ModelConfig& config, uint64_t seed,
                                 const ModelParallel& parallel)
    : DeepSeekV3Model(config, seed, parallel, ExpertParallelSetup{}) {}

DeepSeekV3Model::DeepSeekV3Model(const config::ModelConfig& config, uint64_t seed,
                                 const ExpertParallelSetup& setup)
    : DeepSeekV3Model(config, seed, ModelParallel{}, setup) {}

DeepSeekV3Model::DeepSeekV3Model(const config::ModelConfig& config, ForInference)
    : DeepSeekV3Model(config, std::nullopt, ModelParallel{}, ExpertParallelSetup{}) {}

DeepSeekV3Model::DeepSeekV3Model(const config::ModelConfig& config, uint64_t seed,
                                 const ModelParallel& parallel, const ExpertParallelSetup& setup)
    : DeepSeekV3Model(config, std::optional<uint64_t>(seed), parallel, setup) {}

// Without a seed the parameters are left uninitialised and get no gradients (ForInference).
DeepSeekV3Model::DeepSeekV3Model(const config::ModelConfig& config, std::optional<uint64_t> seed,
                                 const ModelParallel& parallel, const ExpertParallelSetup& setup)
    : registry_(config),
      holding_(parallel.pipeline),
      dims_(model_dims(config)),
      tp_(checked_tp_group(config, parallel)),
      vocab_begin_(tp_.rank * (dims_.vocab / tp_.size)),
      store_(std::make_unique<ParameterStore>(
          registry_, combined_selection(tp_, setup.shards, parallel.pipeline), parallel.precision,
          /*gradients=*/seed.has_value(), parallel.device)),
      embedding_(held_weight(*store_, "model.embed_tokens.weight"), tp_, vocab_begin_),
      head_(dims_.eps, held_weight(*store_, "model.norm.weight"), lm_head_weight(*store_), tp_,
            vocab_begin_) {
  TRIDENT_CHECK(holding_.layers.empty() ||
                    static_cast<int64_t>(holding_.layers.size()) == dims_.layers,
                "PipelineHolding lists ", holding_.layers.size(), " layers, the model has ",
                dims_.layers);
  dims_.router.experts_per_node = setup.experts_per_node;
  dims_.router.max_nodes = setup.max_nodes_per_token;
  if (seed.has_value()) store_->initialize(*seed);
  for (int64_t layer = 0; layer < dims_.layers; ++layer) {
    // Layers of other pipeline ranks stay null (num_layers() still counts the whole model).
    layers_.push_back(holding_.holds_layer(layer) ? std::make_unique<DecoderLayer>(
                                                        dims_, config, *store_, layer, tp_)
                                                  : nullptr);
  }
  const Weight lm_head = lm_head_weight(*store_);
  for (int64_t depth = 1; depth <= (holding_.head ? dims_.mtp_depth : 0); ++depth) {
    mtp_.push_back(
        std::make_unique<MtpModule>(dims_, config, *store_, depth, lm_head, tp_, vocab_begin_));
  }
  if (setup.engine) {
    for (const auto& layer : layers_) {
      if (layer && layer->is_moe()) layer->moe().set_routed_engine(setup.engine);
    }
    for (const auto& module : mtp_) {
      if (module->layer().is_moe()) module->layer().moe().set_routed_engine(setup.engine);
    }
  }
  const int64_t configured = config.max_position_embeddings();
  ensure_rope(configured > 0 ? std::min<int64_t>(configured, 4096) : 4096);
  reset_expert_loads();
}

void DeepSeekV3Model::ensure_rope(int64_t positions) {
  if (rope_.max_positions >= positions) return;
  rope_ = ops::make_rope_table(dims_.rope, positions, dims_.yarn, store_->device());
}

SequenceLayout DeepSeekV3Model::sequence_layout(int64_t batch, int64_t seq) {
  ensure_rope(seq);
  return make_sequence_layout(batch, seq, rope_);
}

float DeepSeekV3Model::balance_coefficient(const LossScales& scales) {
  if (scales.balance_alpha == 0.0 || scales.sequences == 0) return 0.0f;
  return static_cast<float>(scales.balance_alpha / static_cast<double>(scales.sequences));
}

Tensor DeepSeekV3Model::forward_layers(int64_t first, int64_t last, const Tensor& x,
                                       const SequenceLayout& layout, float balance_coef,
                                       std::vector<DecoderLayerContext>& contexts) const {
  TRIDENT_CHECK(0 <= first && first <= last && last <= num_layers(), "bad layer range [", first,
                ", ", last, ")");
  contexts.resize(static_cast<size_t>(last - first));
  Tensor h = x;
  const DType activations = saved_activation_dtype();
  for (int64_t i = first; i < last; ++i) {
    DecoderLayerContext& ctx = contexts[static_cast<size_t>(i - first)];
    h = layer(i).forward(h, layout, balance_coef, ctx);
    keep_in_bf16(activations, saved_activations(ctx));
  }
  return h;
}

DType DeepSeekV3Model::saved_activation_dtype() const {
  // bf16 under bf16 activations (saved_activations.h); a model built for inference never runs
  // the backward, so there is nothing to narrow.
  return store_->has_gradients() ? store_->precision().activations : DType::F32;
}

std::pair<Tensor, Tensor> DeepSeekV3Model::forward_backward_layers(
    int64_t f_first, int64_t f_last, const Tensor& x, const SequenceLayout& layout,
    float balance_coef, std::vector<DecoderLayerContext>& forward_contexts, int64_t b_first,
    int64_t b_last, const Tensor& dout, std::vector<DecoderLayerContext>& backward_contexts) const {
  require_gradients("forward_backward_layers");
  TRIDENT_CHECK(0 <= f_first && f_first <= f_last && f_last <= num_layers(),
                "bad forward layer range [", f_first, ", ", f_last, ")");
  TRIDENT_CHECK(static_cast<int64_t>(backward_contexts.size()) == b_last - b_first,
                "forward_backward_layers: contexts do not match the backward layer range");
  forward_contexts.resize(static_cast<size_t>(f_last - f_first));
  const DType activations = saved_activation_dtype();
  Tensor h = x, d = dout;
  int64_t i = f_first, j = b_last - 1;
  for (; i < f_last && j >= b_first; ++i, --j) {
    DecoderLayerContext& fctx = forward_contexts[static_cast<size_t>(i - f_first)];
    std::tie(h, d) =
        layer(i).forward_backward_input(h, layout, balance_coef, fctx, layer(j), d,
                                        backward_contexts[static_cast<size_t>(j - b_first)]);
    keep_in_bf16(activations, saved_activations(fctx));
  }
  for (; i < f_last; ++i) {
    DecoderLayerContext& fctx = forward_contexts[static_cast<size_t>(i - f_first)];
    h = layer(i).forward(h, layout, balance_coef, fctx);
    keep_in_bf16(activations, saved_activations(fctx));
  }
  for (; j >= b_first; --j) {
    d = layer(j).backward_input(d, backward_contexts[static_cast<size_t>(j - b_first)]);
  }
  return {std::move(h), std::move(d)};
}

Tensor DeepSeekV3Model::backward_layers(int64_t first, int64_t last, const Tensor& dout,
                                        std::vector<DecoderLayerContext>& contexts,
                                        bool with_weights) const {
  require_gradients("backward_layers");
  TRIDENT_CHECK(static_cast<int64_t>(contexts.size()) == last - first,
                "backward_layers: contexts do not match the layer range");
  Tensor d = dout;
  for (int64_t i = last - 1; i >= first; --i) {
    DecoderLayerContext& ctx = contexts[static_cast<size_t>(i - first)];
    d = layer(i).backward_input(d, ctx);
    if (with_weights) layer(i).backward_weight(ctx);
  }
  return d;
}

namespace {
float inverse_count(int64_t count, double weight) {
  return count > 0 ? static_cast<float>(weight / static_cast<double>(count)) : 0.0f;
}
}  // namespace

LossResult DeepSeekV3Model::forward_outputs(const TokenBatch& batch, const Tensor& h_final,
                                            const SequenceLayout& layout, const LossScales& scales,
                                            float balance_coef, OutputContext& ctx) const {
  const int64_t D = mtp_depth();
  TRIDENT_CHECK(static_cast<int64_t>(scales.mtp_targets.size()) >= D,
                "LossScales has target counts for ", scales.mtp_targets.size(),
                " MTP depths, the model has ", D);
  LossResult losses;
  const HeadForward main = head_.forward(h_final, shifted_targets(batch, 1, h_final.device()),
                                         inverse_count(scales.lm_targets, 1.0), ctx.head);
  losses.lm_ce_sum = main.ce.loss_sum;
  losses.lm_tokens = main.ce.tokens;
  losses.lm_loss =
      scales.lm_targets > 0 ? main.ce.loss_sum / static_cast<double>(scales.lm_targets) : 0.0;
  ctx.mtp.resize(static_cast<size_t>(D));
  Tensor h_prev = main.normed;  // h⁰ is taken after the final norm
  for (int64_t d = 1; d <= D; ++d) {
    MtpContext& m = ctx.mtp[static_cast<size_t>(d - 1)];
    const int64_t count = scales.mtp_targets[static_cast<size_t>(d - 1)];
    m.ids = shifted_ids(batch, d, h_prev.device());
    const Tensor h = mtp(d).forward(embedding_.forward(m.ids), h_prev, layout, balance_coef, m);
    keep_in_bf16(store_->precision().activations, saved_activations(m));
    const HeadForward out = mtp(d).head().forward(
        h, shifted_targets(batch, d + 1, h.device()),
        inverse_count(count, scales.mtp_weight / static_cast<double>(D)), m.head);
    losses.mtp_ce_sum.push_back(out.ce.loss_sum);
    losses.mtp_tokens.push_back(out.ce.tokens);
    if (count > 0)
      losses.mtp_loss += out.ce.loss_sum / static_cast<double>(count) / static_cast<double>(D);
    h_prev = h;
  }
  return losses;
}

void DeepSeekV3Model::require_gradients(const char* what) const {
  TRIDENT_CHECK(store_->has_gradients(), what,
                ": this model was built for inference "
                "(models::ForInference) and holds no gradients");
}

Tensor DeepSeekV3Model::backward_outputs(OutputContext& ctx) const {
  require_gradients("backward_outputs");
  // MTP depths from the last: each returns the gradient of its h^{d−1}.
  Tensor d_prev;
  for (int64_t d = mtp_depth(); d >= 1; --d) {
    MtpContext& m = ctx.mtp[static_cast<size_t>(d - 1)];
    const MtpModule& module = mtp(d);
    Tensor dh = module.head().backward_input(m.head);
    if (d_prev.defined()) ops::axpy(1.0f, d_prev, dh);
    const MtpInputGradients grads = module.backward_input(dh, m);
    module.head().backward_weight(m.head);
    module.backward_weight(m);
    embedding_.backward_weight(m.ids, grads.embedded);
    d_prev = grads.h_prev;
  }
  // d_prev is now the gradient of h⁰, the main head's normalised output.
  const Tensor dh_final = head_.backward_input(ctx.head, d_prev.defined() ? &d_prev : nullptr);
  head_.backward_weight(ctx.head);
  ctx.mtp.clear();
  ctx.head = HeadContext{};
  return dh_final;
}

void DeepSeekV3Model::forward(const TokenBatch& batch, const LossScales& scales,
                              ModelContext& ctx) {
  ctx.layout = sequence_layout(batch.batch, batch.seq_len);
  const float balance_coef = balance_coefficient(scales);
  ctx.ids = input_ids(batch);
  const Tensor x = embedding_.forward(ctx.ids);
  const Tensor h_final = forward_layers(0, num_layers(), x, ctx.layout, balance_coef, ctx.layers);
  LossResult& losses = ctx.losses;
  losses = forward_outputs(batch, h_final, ctx.layout, scales, balance_coef, ctx.outputs);
  if (scales.sequences > 0) {
    double balance = 0.0;
    for (const DecoderLayerContext& layer_ctx : ctx.layers) balance += layer_ctx.moe.balance_sum;
    for (const MtpContext& m : ctx.outputs.mtp) balance += m.layer.moe.balance_sum;
    losses.balance_loss = balance / static_cast<double>(scales.sequences);
  }
  losses.loss = losses.lm_loss + scales.mtp_weight * losses.mtp_loss +
                scales.balance_alpha * losses.balance_loss;
}

void DeepSeekV3Model::backward(ModelContext& ctx) {
  const Tensor dh_final = backward_outputs(ctx.outputs);
  const Tensor dx = backward_layers(0, num_layers(), dh_final, ctx.layers, true);
  embedding_.backward_weight(ctx.ids, dx);
  ctx.layers.clear();
}

LossResult DeepSeekV3Model::forward_backward(const TokenBatch& batch, const LossScales& scales) {
  ModelContext ctx;
  forward(batch, scales, ctx);
  record_expert_loads(ctx);
  const LossResult losses = ctx.losses;
  backward(ctx);
  return losses;
}

ForwardResult DeepSeekV3Model::forward(const TokenBatch& batch, const LossScales* scales) {
  const LossScales own = make_loss_scales(count_targets(batch, mtp_depth()), 0.0, 0.0);
  ModelContext ctx;
  forward(batch, scales != nullptr ? *scales : own, ctx);
  ForwardResult result;
  result.logits = ctx.outputs.head.logits;
  for (const MtpContext& m : ctx.outputs.mtp) result.mtp_logits.push_back(m.head.logits);
  result.losses = ctx.losses;
  return result;
}

void DeepSeekV3Model::reset_expert_loads() {
  loads_.clear();
  auto add = [&](const DecoderLayer& layer) {
    if (layer.is_moe()) {
      loads_.push_back(
          ExpertLoad{layer.index(), std::vector<int64_t>(static_cast<size_t>(dims_.experts), 0)});
    }
  };
  for (const auto& layer : layers_) {
    if (layer) add(*layer);
  }
  for (const auto& module : mtp_) add(module->layer());
}

void DeepSeekV3Model::record_expert_loads(const ModelContext& ctx) {
  std::vector<const MoeContext*> moe;
  for (size_t i = 0; i < ctx.layers.size(); ++i) {
    if (layers_[i] && layers_[i]->is_moe()) moe.push_back(&ctx.layers[i].moe);
  }
  for (size_t d = 0; d < ctx.outputs.mtp.size(); ++d) {
    if (mtp_[d]->layer().is_moe()) moe.push_back(&ctx.outputs.mtp[d].layer.moe);
  }
  TRIDENT_CHECK(moe.size() == loads_.size(), "expert load bookkeeping out of step");
  for (size_t i = 0; i < moe.size(); ++i) {
    for (size_t e = 0; e < loads_[i].tokens_per_expert.size(); ++e) {
      loads_[i].tokens_per_expert[e] += moe[i]->tokens_per_expert[e];
    }
  }
}

void DeepSeekV3Model::update_router_bias(const std::vector<ExpertLoad>& global_loads,
                                         double gamma) {
  for (const ExpertLoad& load : global_loads) {
    const std::string name =
        "model.layers." + std::to_string(load.layer) + ".mlp.gate.e_score_correction_bias";
    // Another pipeline rank's layer, or a router without the buffer (V2's topk methods).
    if (!store_->has(name)) continue;
    // One vector of n_routed_experts floats, updated on the host.
    update_on_host(store_->value(name), [&](Tensor& host) {
      float* bias = host.data<float>();
      double mean = 0.0;
      for (const int64_t tokens : load.tokens_per_expert) mean += static_cast<double>(tokens);
      mean /= static_cast<double>(load.tokens_per_expert.size());
      for (size_t e = 0; e < load.tokens_per_expert.size(); ++e) {
        const double gap = mean - static_cast<double>(load.tokens_per_expert[e]);
        const double sign = gap > 0 ? 1.0 : (gap < 0 ? -1.0 : 0.0);
        bias[e] += static_cast<float>(gamma * sign);
      }
    });
  }
}

}  // namespace trident::models
