#include "models/deepseek_v3/mtp.h"

#include <string>

namespace trident::models {

namespace {
std::string mtp_prefix(const ModelDims& dims, int64_t depth) {
  return "model.layers." + std::to_string(dims.layers + depth - 1) + ".";
}
}  // namespace

MtpModule::MtpModule(const ModelDims& dims, const config::ModelConfig& config,
                     ParameterStore& store, int64_t depth, const Weight& lm_head,
                     parallel::tp::TpGroup tp, int64_t vocab_begin)
    : dims_(dims),
      depth_(depth),
      enorm_(weight_of(store, mtp_prefix(dims, depth) + "enorm.weight")),
      hnorm_(weight_of(store, mtp_prefix(dims, depth) + "hnorm.weight")),
      eh_proj_(weight_of(store, mtp_prefix(dims, depth) + "eh_proj.weight")),
      layer_(dims, config, store, dims.layers + depth - 1, tp),
      head_(dims.eps, weight_of(store, mtp_prefix(dims, depth) + "shared_head.norm.weight"),
            lm_head, tp, vocab_begin) {}

Tensor MtpModule::forward(const Tensor& embedded, const Tensor& h_prev,
                          const SequenceLayout& layout, float balance_coef, MtpContext& ctx) const {
  const int64_t H = dims_.hidden;
  const Tensor e = norm_step_forward(enorm_, dims_.eps, embedded, ctx.enorm);
  const Tensor g = norm_step_forward(hnorm_, dims_.eps, h_prev, ctx.hnorm);
  Tensor joined = Tensor::empty({embedded.size(0), 2 * H}, DType::F32, embedded.device());
  put_columns(joined, 2 * H, 0, e, false);
  put_columns(joined, 2 * H, H, g, false);
  const Tensor z = linear_step_forward(eh_proj_, joined, ctx.eh_proj);
  return layer_.forward(z, layout, balance_coef, ctx.layer);
}

MtpInputGradients MtpModule::backward_input(const Tensor& dh, MtpContext& ctx) const {
  const int64_t H = dims_.hidden;
  const Tensor dz = layer_.backward_input(dh, ctx.layer);
  const Tensor djoined = linear_step_backward_input(eh_proj_, dz, ctx.eh_proj);
  MtpInputGradients grads;
  grads.embedded = norm_step_backward_input(enorm_, take_columns(djoined, 2 * H, 0, H), ctx.enorm);
  grads.h_prev = norm_step_backward_input(hnorm_, take_columns(djoined, 2 * H, H, H), ctx.hnorm);
  return grads;
}

void MtpModule::backward_weight(MtpContext& ctx) const {
  layer_.backward_weight(ctx.layer);
  linear_step_backward_weight(eh_proj_, ctx.eh_proj);
  norm_step_backward_weight(enorm_, ctx.enorm);
  norm_step_backward_weight(hnorm_, ctx.hnorm);
}

}  // namespace trident::models
