// The MoE layer's sequence-wise balance losses: DeepSeek-V3's expert-level loss and
// DeepSeek-V2's device-level and communication losses, which fold into the same per-expert
// weights (docs/model.md, "Output and losses" and "DeepSeek-V2"). The arithmetic is the ops'
// (ops::balance_loss_forward/backward); this file says which routing they see.
#include "models/deepseek_v3/moe.h"  // MoeLayer's balance members are defined here
#include "ops/ops.h"

namespace trident::models {

ops::BalanceLossShape MoeLayer::balance_shape(const MoeContext& ctx) const {
  ops::BalanceLossShape shape;
  shape.rows = ctx.layout.batch;
  shape.seq = ctx.layout.seq;
  shape.experts = dims_.experts;
  shape.top_k = dims_.top_k;
  shape.sigmoid = dims_.router.sigmoid;
  shape.devices = dims_.balance.devices;
  shape.max_devices = dims_.balance.max_devices;
  shape.device_weight = dims_.balance.device_weight;
  shape.comm_weight = dims_.balance.comm_weight;
  return shape;
}

void MoeLayer::balance_forward(MoeContext& ctx) const {
  ctx.balance_f = Tensor::empty({ctx.layout.batch, dims_.experts}, DType::F32, ctx.scores.device());
  ctx.balance_sum =
      ops::balance_loss_forward(balance_shape(ctx), ctx.scores, ctx.indices, ctx.balance_f);
}

void MoeLayer::balance_backward(const MoeContext& ctx, Tensor& dlogits) const {
  if (ctx.balance_coef == 0.0f) return;
  ops::balance_loss_backward(balance_shape(ctx), ctx.balance_coef, ctx.scores, ctx.balance_f,
                             dlogits);
}

}  // namespace trident::models
