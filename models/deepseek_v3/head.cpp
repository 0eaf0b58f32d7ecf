#include "models/deepseek_v3/head.h"

#include "ops/ops.h"
#include "parallel/tp/vocab_parallel.h"

namespace trident::models {

Tensor Embedding::forward(const Tensor& ids) const {
  Tensor out =
      Tensor::empty({ids.numel(), table_.value.size(1)}, DType::F32, table_.value.device());
  if (!tp_.split()) {
    ops::embedding_forward(ids, table_.value, out);
  } else {
    parallel::tp::vocab_parallel_embedding_local(ids, table_.value, vocab_begin_, out);
    parallel::tp::tp_leave_forward(tp_, out);
  }
  // The first activation: bf16 like the rest (fp32 weights under bf16 activations hold values
  // a bf16 tensor could not).
  round_activations(table_.activations, {&out});
  return out;
}

void Embedding::backward_weight(const Tensor& ids, const Tensor& dout) const {
  if (!table_.grad.defined()) return;
  Tensor grad = table_.grad;
  if (tp_.split()) {
    parallel::tp::vocab_parallel_embedding_backward_weight(ids, dout, vocab_begin_, grad);
  } else {
    ops::embedding_backward_weight(ids, dout, grad);
  }
}

HeadForward OutputHead::forward(const Tensor& h, const Tensor& targets, float grad_scale,
                                HeadContext& ctx) const {
  HeadForward out;
  out.normed = norm_step_forward(norm_, eps_, h, ctx.norm);
  out.logits = linear_step_forward(head_, out.normed, ctx.head);
  ctx.logits = out.logits;
  ctx.targets = targets;
  ctx.lse = Tensor::empty({h.size(0)}, DType::F32, h.device());
  ctx.grad_scale = grad_scale;
  out.ce = tp_.split() ? parallel::tp::vocab_parallel_cross_entropy_forward(
                             tp_, out.logits, targets, vocab_begin_, ctx.lse)
                       : ops::cross_entropy_forward(out.logits, targets, ctx.lse);
  return out;
}

Tensor OutputHead::backward_input(HeadContext& ctx, const Tensor* extra_dnormed) const {
  Tensor dlogits = Tensor::empty(ctx.logits.shape(), DType::F32, ctx.logits.device());
  if (tp_.split()) {
    parallel::tp::vocab_parallel_cross_entropy_backward(ctx.logits, ctx.targets, ctx.lse,
                                                        vocab_begin_, ctx.grad_scale, dlogits);
  } else {
    ops::cross_entropy_backward(ctx.logits, ctx.targets, ctx.lse, ctx.grad_scale, dlogits);
  }
  ctx.logits = ctx.targets = ctx.lse = Tensor();
  Tensor dnormed = linear_step_backward_input(head_, dlogits, ctx.head);
  parallel::tp::tp_enter_backward(tp_, dnormed);  // lm_head is column-parallel over the vocabulary
  if (extra_dnormed != nullptr) ops::axpy(1.0f, *extra_dnormed, dnormed);
  return norm_step_backward_input(norm_, dnormed, ctx.norm);
}

void OutputHead::backward_weight(HeadContext& ctx) const {
  linear_step_backward_weight(head_, ctx.head);
  norm_step_backward_weight(norm_, ctx.norm);
}

}  // namespace trident::models
