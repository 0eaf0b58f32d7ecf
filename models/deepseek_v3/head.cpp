#include "models/deepseek_v3/head.h"

#include "ops/cpu/elementwise.h"

namespace trident::models {

namespace cpu = ops::cpu;

Tensor Embedding::forward(const Tensor& ids) const {
  Tensor out = Tensor::empty({ids.numel(), table_.value.size(1)});
  cpu::embedding_forward(ids, table_.value, out);
  return out;
}

void Embedding::backward_weight(const Tensor& ids, const Tensor& dout) const {
  if (!table_.grad.defined()) return;
  Tensor grad = table_.grad;
  cpu::embedding_backward_weight(ids, dout, grad);
}

HeadForward OutputHead::forward(const Tensor& h, const Tensor& targets, float grad_scale,
                                HeadContext& ctx) const {
  HeadForward out;
  out.normed = norm_step_forward(norm_, eps_, h, ctx.norm);
  out.logits = linear_step_forward(head_, out.normed, ctx.head);
  ctx.logits = out.logits;
  ctx.targets = targets;
  ctx.lse = Tensor::empty({h.size(0)});
  ctx.grad_scale = grad_scale;
  out.ce = cpu::cross_entropy_forward(out.logits, targets, ctx.lse);
  return out;
}

Tensor OutputHead::backward_input(HeadContext& ctx, const Tensor* extra_dnormed) const {
  Tensor dlogits = Tensor::empty(ctx.logits.shape());
  cpu::cross_entropy_backward(ctx.logits, ctx.targets, ctx.lse, ctx.grad_scale, dlogits);
  ctx.logits = ctx.targets = ctx.lse = Tensor();
  Tensor dnormed = linear_step_backward_input(head_, dlogits, ctx.head);
  if (extra_dnormed != nullptr) cpu::axpy(1.0f, *extra_dnormed, dnormed);
  return norm_step_backward_input(norm_, dnormed, ctx.norm);
}

void OutputHead::backward_weight(HeadContext& ctx) const {
  linear_step_backward_weight(head_, ctx.head);
  norm_step_backward_weight(norm_, ctx.norm);
}

}  // namespace trident::models
