#include "models/deepseek_v3/moe.h"

#include "ops/ops.h"
#include "runtime/core/error.h"

namespace trident::models {

MoeWeights moe_weights(ParameterStore& store, int64_t layer, const std::string& prefix,
                       const ModelDims& dims) {
  MoeWeights w;
  w.router = with_fp32_outputs(weight_of(store, prefix + "gate.weight"));  // fp32 logits
  // Only noaux_tc routing has the bias buffer; the other methods select by the plain scores.
  w.router_bias = dims.has_router_bias ? store.value(prefix + "gate.e_score_correction_bias")
                                       : Tensor::zeros({dims.experts}, DType::F32, store.device());
  w.gate = store.expert_bank(layer, "gate_proj");
  w.up = store.expert_bank(layer, "up_proj");
  w.down = store.expert_bank(layer, "down_proj");
  // Expert parallelism holds a contiguous slice; the single-rank path checks for all of them.
  TRIDENT_CHECK(w.gate.count > 0 && dims.experts % w.gate.count == 0, "MoE layer ", layer,
                ": the store holds ", w.gate.count, " of ", dims.experts, " routed experts");
  w.has_shared = dims.shared_experts > 0;
  if (w.has_shared) w.shared = ffn_weights(store, prefix + "shared_experts.");
  return w;
}

Tensor MoeLayer::forward(const Tensor& x, const SequenceLayout& layout, float balance_coef,
                         MoeContext& ctx) const {
  const int64_t T = x.size(0);
  const int64_t E = dims_.experts, k = dims_.top_k;
  ctx.layout = layout;
  ctx.balance_coef = balance_coef;
  if (engine_) return forward_expert_parallel(x, ctx);
  TRIDENT_CHECK(w_.gate.count == E, "the single-rank MoE layer needs every expert (", E,
                "), the store holds ", w_.gate.count, ": give the model an expert-parallel engine");

  const Tensor logits = linear_step_forward(w_.router, x, ctx.router);  // [T, E], fp32
  ctx.indices = Tensor::empty({T, k}, DType::I32, x.device());
  ctx.weights = Tensor::empty({T, k}, DType::F32, x.device());
  ctx.scores = Tensor::empty({T, E}, DType::F32, x.device());
  ops::router_forward(dims_.router, logits, w_.router_bias, ctx.indices, ctx.weights, ctx.scores);
  ctx.plan = ops::make_permute_plan(ctx.indices, E);
  ctx.tokens_per_expert = ctx.plan.tokens_per_expert;
  const std::vector<int64_t>& counts = ctx.plan.tokens_per_expert;

  const int64_t Fe = dims_.expert_ffn;
  ctx.xp = Tensor::empty({T * k, dims_.hidden}, DType::F32, x.device());
  ops::permute_forward(ctx.plan, x, ctx.xp);
  ctx.gp = Tensor::empty({T * k, Fe}, DType::F32, x.device());
  ctx.up = Tensor::empty({T * k, Fe}, DType::F32, x.device());
  ops::grouped_linear_forward(ctx.xp, w_.gate.value, counts, ctx.gp);
  ops::grouped_linear_forward(ctx.xp, w_.up.value, counts, ctx.up);
  round_activations(w_.gate.activations, {&ctx.gp, &ctx.up});
  ctx.ap = Tensor::empty({T * k, Fe}, DType::F32, x.device());
  ops::swiglu_forward(ctx.gp, ctx.up, ctx.ap);
  round_activations(w_.gate.activations, {&ctx.ap});
  ctx.yp = Tensor::empty({T * k, dims_.hidden}, DType::F32, x.device());
  ops::grouped_linear_forward(ctx.ap, w_.down.value, counts, ctx.yp);
  round_activations(w_.gate.activations, {&ctx.yp});

  Tensor out = Tensor::empty({T, dims_.hidden}, DType::F32, x.device());
  ops::unpermute_forward(ctx.plan, ctx.yp, ctx.weights, out);
  if (w_.has_shared) {
    const Tensor shared = shared_.forward(x, ctx.shared);
    ops::axpy(1.0f, shared, out);
  }
  balance_forward(ctx);
  return out;
}

Tensor MoeLayer::backward_input(const Tensor& dout, MoeContext& ctx) const {
  if (ctx.routed) return backward_input_expert_parallel(dout, ctx);
  const int64_t T = dout.size(0);
  const int64_t E = dims_.experts, k = dims_.top_k, Fe = dims_.expert_ffn;
  const std::vector<int64_t>& counts = ctx.plan.tokens_per_expert;

  ctx.d_yp = Tensor::empty({T * k, dims_.hidden}, DType::F32, dout.device());
  Tensor d_weights = Tensor::empty({T, k}, DType::F32, dout.device());
  ops::unpermute_backward(ctx.plan, dout, ctx.yp, ctx.weights, ctx.d_yp, d_weights);
  Tensor d_ap = Tensor::empty({T * k, Fe}, DType::F32, dout.device());
  ops::grouped_linear_backward_input(ctx.d_yp, w_.down.value, counts, d_ap);
  ctx.d_gp = Tensor::empty({T * k, Fe}, DType::F32, dout.device());
  ctx.d_up = Tensor::empty({T * k, Fe}, DType::F32, dout.device());
  round_activations(w_.gate.activations, {&ctx.d_yp, &d_ap});
  ops::swiglu_backward(d_ap, ctx.gp, ctx.up, ctx.d_gp, ctx.d_up);
  round_activations(w_.gate.activations, {&ctx.d_gp, &ctx.d_up});
  Tensor d_xp = Tensor::empty({T * k, dims_.hidden}, DType::F32, dout.device());
  ops::grouped_linear_backward_input(ctx.d_gp, w_.gate.value, counts, d_xp);
  ops::grouped_linear_backward_input(ctx.d_up, w_.up.value, counts, d_xp, true);
  round_activations(w_.gate.activations, {&d_xp});
  Tensor dx = Tensor::empty({T, dims_.hidden}, DType::F32, dout.device());
  ops::permute_backward(ctx.plan, d_xp, dx);

  Tensor d_logits = Tensor::empty({T, E}, DType::F32, dout.device());
  ops::router_backward(dims_.router, d_weights, ctx.indices, ctx.scores, d_logits);
  balance_backward(ctx, d_logits);
  linear_step_backward_input_into(w_.router, d_logits, ctx.router, dx, true);
  if (w_.has_shared) shared_.backward_input_into(dout, ctx.shared, dx, true);

  ctx.gp = ctx.up = ctx.yp = ctx.scores = ctx.weights = Tensor();
  return dx;
}

void MoeLayer::backward_weight(MoeContext& ctx) const {
  if (ctx.routed) {
    engine_->backward_weight(banks(), *ctx.routed);
    linear_step_backward_weight(w_.router, ctx.router);
    if (w_.has_shared) shared_.backward_weight(ctx.shared);
    ctx.routed.reset();
    ctx.indices = Tensor();
    return;
  }
  const std::vector<int64_t>& counts = ctx.plan.tokens_per_expert;
  Tensor down_grad = w_.down.grad, gate_grad = w_.gate.grad, up_grad = w_.up.grad;  // handles
  ops::grouped_linear_backward_weight(ctx.d_yp, ctx.ap, counts, down_grad);
  ops::grouped_linear_backward_weight(ctx.d_gp, ctx.xp, counts, gate_grad);
  ops::grouped_linear_backward_weight(ctx.d_up, ctx.xp, counts, up_grad);
  linear_step_backward_weight(w_.router, ctx.router);
  if (w_.has_shared) shared_.backward_weight(ctx.shared);
  ctx.xp = ctx.ap = ctx.d_yp = ctx.d_gp = ctx.d_up = ctx.indices = Tensor();
  ctx.plan = ops::PermutePlan{};
}

// ---- Expert parallelism ----

void MoeLayer::set_routed_engine(std::shared_ptr<const RoutedExpertsEngine> engine) {
  engine_ = std::move(engine);
}

// Router and balance loss as on one rank; the routed experts go through the engine, which runs
// the shared expert while its first dispatch is on the wire.
Tensor MoeLayer::forward_expert_parallel(const Tensor& x, MoeContext& ctx) const {
  route(x, ctx);
  Tensor shared;
  const auto run_shared = [&] {
    if (w_.has_shared) shared = shared_.forward(x, ctx.shared);
  };
  Tensor out = engine_->forward(x, ctx.indices, ctx.weights, ctx.layout.seq, banks(), run_shared,
                                ctx.routed);
  return finish_forward(std::move(out), shared, ctx);
}

Tensor MoeLayer::backward_input_expert_parallel(const Tensor& dout, MoeContext& ctx) const {
  Tensor dx_local;  // router and shared expert, computed while the first dispatch flies
  Tensor dx =
      engine_->backward_input(dout, banks(), local_backward(dout, ctx, dx_local), *ctx.routed);
  return finish_backward(std::move(dx), dx_local, ctx);
}

std::pair<Tensor, Tensor> MoeLayer::forward_backward_input(
    const Tensor& x, const SequenceLayout& layout, float balance_coef, MoeContext& forward_ctx,
    const MoeLayer& backward_layer, const Tensor& dout, MoeContext& backward_ctx) const {
  // Both passes must go through one engine to be interleaved (every layer of a model has the
  // same one, parallelize.h); otherwise the plain calls.
  if (!engine_ || !backward_ctx.routed || backward_layer.engine_ != engine_) {
    Tensor out = forward(x, layout, balance_coef, forward_ctx);
    return {std::move(out), backward_layer.backward_input(dout, backward_ctx)};
  }
  forward_ctx.layout = layout;
  forward_ctx.balance_coef = balance_coef;
  route(x, forward_ctx);
  Tensor shared, dx_local;
  const std::function<void()> run_shared = [&] {
    if (w_.has_shared) shared = shared_.forward(x, forward_ctx.shared);
  };
  const std::function<void(const Tensor&)> local =
      backward_layer.local_backward(dout, backward_ctx, dx_local);
  const ExpertBanks forward_banks = banks(), backward_banks = backward_layer.banks();
  RoutedExpertsEngine::Paired paired = engine_->forward_backward_input(
      {x, forward_ctx.indices, forward_ctx.weights, forward_ctx.layout.seq, forward_banks,
       run_shared, forward_ctx.routed},
      {dout, backward_banks, local, *backward_ctx.routed});
  Tensor out = finish_forward(std::move(paired.forward_out), shared, forward_ctx);
  Tensor dx = backward_layer.finish_backward(std::move(paired.backward_dx), dx_local, backward_ctx);
  return {std::move(out), std::move(dx)};
}

void MoeLayer::route(const Tensor& x, MoeContext& ctx) const {
  const int64_t T = x.size(0);
  const int64_t E = dims_.experts, k = dims_.top_k;
  const Tensor logits = linear_step_forward(w_.router, x, ctx.router);  // [T, E], fp32
  ctx.indices = Tensor::empty({T, k}, DType::I32, x.device());
  ctx.weights = Tensor::empty({T, k}, DType::F32, x.device());
  ctx.scores = Tensor::empty({T, E}, DType::F32, x.device());
  ops::router_forward(dims_.router, logits, w_.router_bias, ctx.indices, ctx.weights, ctx.scores);
  ctx.tokens_per_expert = ops::count_per_expert(ctx.indices, E);
}

Tensor MoeLayer::finish_forward(Tensor out, const Tensor& shared, MoeContext& ctx) const {
  TRIDENT_CHECK(ctx.routed != nullptr, "the routed-experts engine kept no state");
  ctx.dropped_slots = ctx.routed->dropped_slots;
  if (w_.has_shared) ops::axpy(1.0f, shared, out);
  balance_forward(ctx);
  return out;
}

std::function<void(const Tensor&)> MoeLayer::local_backward(const Tensor& dout, MoeContext& ctx,
                                                            Tensor& dx_local) const {
  return [this, &dout, &ctx, &dx_local](const Tensor& d_weights) {
    const int64_t T = dout.size(0);
    Tensor d_logits = Tensor::empty({T, dims_.experts}, DType::F32, dout.device());
    ops::router_backward(dims_.router, d_weights, ctx.indices, ctx.scores, d_logits);
    balance_backward(ctx, d_logits);
    dx_local = linear_step_backward_input(w_.router, d_logits, ctx.router);
    if (w_.has_shared) shared_.backward_input_into(dout, ctx.shared, dx_local, true);
  };
}

Tensor MoeLayer::finish_backward(Tensor dx, const Tensor& dx_local, MoeContext& ctx) const {
  TRIDENT_CHECK(dx_local.defined(), "the routed-experts engine did not run the local backward");
  ops::axpy(1.0f, dx_local, dx);
  ctx.scores = ctx.weights = Tensor();
  return dx;
}

// The same grouped GEMMs as the single-rank path, on rows grouped by local expert.
Tensor experts_forward(const ExpertBanks& banks, const Tensor& xp,
                       const std::vector<int64_t>& counts, ExpertActivations& act) {
  const int64_t rows = xp.size(0), Fe = banks.ffn();
  act.counts = counts;
  act.xp = xp;
  act.gp = Tensor::empty({rows, Fe}, DType::F32, xp.device());
  act.up = Tensor::empty({rows, Fe}, DType::F32, xp.device());
  ops::grouped_linear_forward(xp, banks.gate.value, counts, act.gp);
  ops::grouped_linear_forward(xp, banks.up.value, counts, act.up);
  const DType activations = banks.gate.activations;
  round_activations(activations, {&act.gp, &act.up});
  act.ap = Tensor::empty({rows, Fe}, DType::F32, xp.device());
  ops::swiglu_forward(act.gp, act.up, act.ap);
  round_activations(activations, {&act.ap});
  Tensor yp = Tensor::empty({rows, banks.hidden()}, DType::F32, xp.device());
  ops::grouped_linear_forward(act.ap, banks.down.value, counts, yp);
  round_activations(activations, {&yp});
  return yp;
}

Tensor experts_backward_input(const ExpertBanks& banks, const Tensor& d_yp,
                              ExpertActivations& act) {
  const int64_t rows = d_yp.size(0), Fe = banks.ffn();
  act.d_yp = d_yp;
  Tensor d_ap = Tensor::empty({rows, Fe}, DType::F32, d_yp.device());
  ops::grouped_linear_backward_input(d_yp, banks.down.value, act.counts, d_ap);
  act.d_gp = Tensor::empty({rows, Fe}, DType::F32, d_yp.device());
  act.d_up = Tensor::empty({rows, Fe}, DType::F32, d_yp.device());
  const DType activations = banks.gate.activations;
  round_activations(activations, {&d_ap});
  ops::swiglu_backward(d_ap, act.gp, act.up, act.d_gp, act.d_up);
  round_activations(activations, {&act.d_gp, &act.d_up});
  Tensor d_xp = Tensor::empty({rows, banks.hidden()}, DType::F32, d_yp.device());
  ops::grouped_linear_backward_input(act.d_gp, banks.gate.value, act.counts, d_xp);
  ops::grouped_linear_backward_input(act.d_up, banks.up.value, act.counts, d_xp, true);
  round_activations(activations, {&d_xp});
  act.gp = act.up = Tensor();
  return d_xp;
}

void experts_backward_weight(const ExpertBanks& banks, ExpertActivations& act) {
  Tensor down_grad = banks.down.grad, gate_grad = banks.gate.grad, up_grad = banks.up.grad;
  ops::grouped_linear_backward_weight(act.d_yp, act.ap, act.counts, down_grad);
  ops::grouped_linear_backward_weight(act.d_gp, act.xp, act.counts, gate_grad);
  ops::grouped_linear_backward_weight(act.d_up, act.xp, act.counts, up_grad);
  act = ExpertActivations{};
}

}  // namespace trident::models
