#include "runtime/train/grpo/policy.h"

namespace trident::train::grpo {

namespace {
models::Weight final_norm(models::DeepSeekV3Model& model) {
  return models::weight_of(model.params(), "model.norm.weight");
}
models::Weight lm_head(models::DeepSeekV3Model& model) {
  return models::weight_of(model.params(), "lm_head.weight");
}
}  // namespace

void policy_forward(models::DeepSeekV3Model& model, const Tensor& ids, int64_t batch, int64_t seq,
                    PolicyForward& fwd) {
  TRIDENT_CHECK(ids.numel() == batch * seq, "policy_forward: ", ids.numel(), " ids for ", batch,
                " rows of ", seq);
  fwd.layout = model.sequence_layout(batch, seq);
  fwd.ids = ids;
  const Tensor x = model.embedding().forward(ids);
  const Tensor h = model.forward_layers(0, model.num_layers(), x, fwd.layout, 0.0f, fwd.layers);
  const Tensor normed = models::norm_step_forward(final_norm(model), model.dims().eps, h, fwd.norm);
  fwd.logits = models::linear_step_forward(lm_head(model), normed, fwd.head);
}

void policy_backward(models::DeepSeekV3Model& model, const Tensor& dlogits, PolicyForward& fwd) {
  const models::Weight head = lm_head(model);
  const models::Weight norm = final_norm(model);
  Tensor dnormed = models::linear_step_backward_input(head, dlogits, fwd.head);
  // lm_head is column-parallel over the vocabulary: each TP rank holds a partial sum.
  parallel::tp_enter_backward(model.tp(), dnormed);
  models::linear_step_backward_weight(head, fwd.head);
  const Tensor dh = models::norm_step_backward_input(norm, dnormed, fwd.norm);
  models::norm_step_backward_weight(norm, fwd.norm);
  const Tensor dx = model.backward_layers(0, model.num_layers(), dh, fwd.layers, true);
  model.embedding().backward_weight(fwd.ids, dx);
  fwd.layers.clear();
  fwd.logits = Tensor();
}

Tensor policy_head_logits(models::DeepSeekV3Model& model, const Tensor& h) {
  models::NormStep norm_step;
  models::LinearStep head_step;
  const Tensor normed =
      models::norm_step_forward(final_norm(model), model.dims().eps, h, norm_step);
  return models::linear_step_forward(lm_head(model), normed, head_step);
}

namespace {
void filler(models::DeepSeekV3Model& model, bool backward) {
  PolicyForward fwd;
  policy_forward(model, Tensor::from_ints({0}, {1}), 1, 1, fwd);
  if (backward) policy_backward(model, Tensor::zeros(fwd.logits.shape()), fwd);
}
}  // namespace

void filler_forward(models::DeepSeekV3Model& model) { filler(model, false); }
void filler_forward_backward(models::DeepSeekV3Model& model) { filler(model, true); }

}  // namespace trident::train::grpo
