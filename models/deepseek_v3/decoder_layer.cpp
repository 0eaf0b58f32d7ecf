#include "models/deepseek_v3/decoder_layer.h"

#include <string>
#include <tuple>
#include <utility>

#include "models/deepseek_v3/registry.h"
#include "ops/ops.h"

namespace trident::models {

namespace {
std::string layer_prefix(int64_t layer) { return "model.layers." + std::to_string(layer) + "."; }
}  // namespace

DecoderLayer::DecoderLayer(const ModelDims& dims, const config::ModelConfig& config,
                           ParameterStore& store, int64_t layer, parallel::tp::TpGroup tp)
    : dims_(dims),
      layer_(layer),
      input_norm_(weight_of(store, layer_prefix(layer) + "input_layernorm.weight")),
      post_norm_(weight_of(store, layer_prefix(layer) + "post_attention_layernorm.weight")),
      attention_(dims, mla_weights(store, layer_prefix(layer) + "self_attn.", dims), tp) {
  const std::string mlp = layer_prefix(layer) + "mlp.";
  if (is_moe_layer(config, layer)) {
    moe_.emplace(dims, moe_weights(store, layer, mlp, dims), tp);
  } else {
    ffn_.emplace(ffn_weights(store, mlp), tp);
  }
}

Tensor DecoderLayer::forward(const Tensor& x, const SequenceLayout& layout, float balance_coef,
                             DecoderLayerContext& ctx) const {
  Tensor h;
  const Tensor hn = forward_attention(x, layout, ctx, h);
  const Tensor ffn_out =
      moe_ ? moe_->forward(hn, layout, balance_coef, ctx.moe) : ffn_->forward(hn, ctx.ffn);
  return add_residual(ffn_out, h);
}

Tensor DecoderLayer::backward_input(const Tensor& dout, DecoderLayerContext& ctx) const {
  const Tensor d_hn =
      moe_ ? moe_->backward_input(dout, ctx.moe) : ffn_->backward_input(dout, ctx.ffn);
  return backward_attention(dout, d_hn, ctx);
}

std::pair<Tensor, Tensor> DecoderLayer::forward_backward_input(
    const Tensor& x, const SequenceLayout& layout, float balance_coef,
    DecoderLayerContext& forward_ctx, const DecoderLayer& backward_layer, const Tensor& dout,
    DecoderLayerContext& backward_ctx) const {
  Tensor h;
  const Tensor hn = forward_attention(x, layout, forward_ctx, h);
  Tensor ffn_out, d_hn;
  if (moe_ && backward_layer.moe_) {
    std::tie(ffn_out, d_hn) = moe_->forward_backward_input(
        hn, layout, balance_coef, forward_ctx.moe, *backward_layer.moe_, dout, backward_ctx.moe);
  } else {
    ffn_out = moe_ ? moe_->forward(hn, layout, balance_coef, forward_ctx.moe)
                   : ffn_->forward(hn, forward_ctx.ffn);
    d_hn = backward_layer.moe_ ? backward_layer.moe_->backward_input(dout, backward_ctx.moe)
                               : backward_layer.ffn_->backward_input(dout, backward_ctx.ffn);
  }
  Tensor out = add_residual(ffn_out, h);
  return {std::move(out), backward_layer.backward_attention(dout, d_hn, backward_ctx)};
}

Tensor DecoderLayer::forward_attention(const Tensor& x, const SequenceLayout& layout,
                                       DecoderLayerContext& ctx, Tensor& h) const {
  const Tensor xn = norm_step_forward(input_norm_, dims_.eps, x, ctx.input_norm);
  h = attention_.forward(xn, layout, ctx.attention);
  ops::axpy(1.0f, x, h);
  round_activations(input_norm_.activations, {&h});  // the residual stream is bf16 as well
  return norm_step_forward(post_norm_, dims_.eps, h, ctx.post_norm);
}

Tensor DecoderLayer::add_residual(Tensor ffn_out, const Tensor& h) const {
  ops::axpy(1.0f, h, ffn_out);
  round_activations(input_norm_.activations, {&ffn_out});
  return ffn_out;
}

Tensor DecoderLayer::backward_attention(const Tensor& dout, const Tensor& d_hn,
                                        DecoderLayerContext& ctx) const {
  Tensor dh = dout.clone();
  norm_step_backward_input_into(post_norm_, d_hn, ctx.post_norm, dh, true);
  const Tensor d_xn = attention_.backward_input(dh, ctx.attention);
  // The residual path. A copy: attention's backward_weight still reads dh as o_proj's dy.
  Tensor dx = dh.clone();
  norm_step_backward_input_into(input_norm_, d_xn, ctx.input_norm, dx, true);
  return dx;
}

void DecoderLayer::backward_weight(DecoderLayerContext& ctx) const {
  if (moe_) {
    moe_->backward_weight(ctx.moe);
  } else {
    ffn_->backward_weight(ctx.ffn);
  }
  norm_step_backward_weight(post_norm_, ctx.post_norm);
  attention_.backward_weight(ctx.attention);
  norm_step_backward_weight(input_norm_, ctx.input_norm);
}

Tensor DecoderLayer::forward_decode(const Tensor& x, int64_t n, const ops::RopeTable& rope,
                                    MlaCache& cache) const {
  DecoderLayerContext scratch;
  const Tensor xn = norm_step_forward(input_norm_, dims_.eps, x, scratch.input_norm);
  Tensor h = attention_.forward_absorbed(xn, n, rope, cache);
  ops::axpy(1.0f, x, h);
  round_activations(input_norm_.activations, {&h});  // the residual stream is bf16 as well
  const Tensor hn = norm_step_forward(post_norm_, dims_.eps, h, scratch.post_norm);
  // The FFN is position-wise: n tokens per row form a [batch, n] layout of their own.
  SequenceLayout layout;
  layout.batch = cache.batch;
  layout.seq = n;
  Tensor out = moe_ ? moe_->forward(hn, layout, 0.0f, scratch.moe) : ffn_->forward(hn, scratch.ffn);
  ops::axpy(1.0f, h, out);
  round_activations(input_norm_.activations, {&out});
  return out;
}

}  // namespace trident::models
