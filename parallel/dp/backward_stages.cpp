#include "parallel/dp/backward_stages.h"

#include "ops/cpu/elementwise.h"

namespace trident::parallel::dp {

int64_t num_backward_stages(const models::DeepSeekV3Model& model) {
  return model.mtp_depth() + 1 + model.num_layers() + 1;
}

int64_t finishing_stage(const models::ParamSpec& spec, const models::DeepSeekV3Model& model) {
  const int64_t depth = model.mtp_depth();
  const int64_t layers = model.num_layers();
  if (spec.mtp_depth >= 1) return depth - spec.mtp_depth;
  if (spec.name == "model.norm.weight" || spec.name == "lm_head.weight") return depth;
  if (spec.layer >= 0 && spec.layer < layers) return depth + 1 + (layers - 1 - spec.layer);
  // The embedding, and anything not known to be finished earlier: only at the very end.
  return num_backward_stages(model) - 1;
}

void staged_backward(const models::DeepSeekV3Model& model, models::ModelContext& ctx,
                     const std::function<void(int64_t stage)>& stage_done) {
  const int64_t depth = model.mtp_depth();
  int64_t stage = 0;
  auto finished = [&] {
    if (stage_done) stage_done(stage);
    ++stage;
  };
  // MTP depths from the last: each returns the gradient of its h^{d−1}.
  Tensor d_prev;
  for (int64_t d = depth; d >= 1; --d) {
    models::MtpContext& m = ctx.mtp[static_cast<size_t>(d - 1)];
    const models::MtpModule& module = model.mtp(d);
    Tensor dh = module.head().backward_input(m.head);
    if (d_prev.defined()) ops::cpu::axpy(1.0f, d_prev, dh);
    const models::MtpInputGradients grads = module.backward_input(dh, m);
    module.head().backward_weight(m.head);
    module.backward_weight(m);
    model.embedding().backward_weight(m.ids, grads.embedded);
    d_prev = grads.h_prev;
    m = models::MtpContext{};
    finished();
  }
  // d_prev is now the gradient of h⁰, the main head's normalised output.
  Tensor d = model.head().backward_input(ctx.head, d_prev.defined() ? &d_prev : nullptr);
  model.head().backward_weight(ctx.head);
  finished();
  for (int64_t i = model.num_layers() - 1; i >= 0; --i) {
    models::DecoderLayerContext& layer_ctx = ctx.layers[static_cast<size_t>(i)];
    d = model.layer(i).backward_input(d, layer_ctx);
    model.layer(i).backward_weight(layer_ctx);
    layer_ctx = models::DecoderLayerContext{};
    finished();
  }
  model.embedding().backward_weight(ctx.ids, d);
  finished();
  ctx.mtp.clear();
  ctx.layers.clear();
}

}  // namespace trident::parallel::dp
