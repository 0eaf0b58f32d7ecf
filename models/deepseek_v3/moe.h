#pragma once
// DeepSeekMoE (docs/model.md): sigmoid router with bias-corrected, group-limited top-k
// selection (or V2's softmax router with greedy / group-limited top-k), routed SwiGLU experts run
// as grouped GEMMs over tokens permuted by expert, combined with the gate weights, plus the
// always-on shared expert. Also computes the sequence-wise balance loss and exposes the step's
// per-expert token counts.
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "models/deepseek_v3/blocks.h"
#include "models/deepseek_v3/dims.h"
#include "models/deepseek_v3/ffn.h"
#include "models/deepseek_v3/sequence.h"
#include "ops/ops.h"

namespace trident::models {

struct MoeWeights {
  Weight router;       // mlp.gate.weight [E, H]
  Tensor router_bias;  // mlp.gate.e_score_correction_bias [E] (selection only, not trained)
  ExpertBank gate, up, down;
  bool has_shared = false;
  FfnWeights shared;
};
// prefix: "model.layers.L.mlp."
MoeWeights moe_weights(ParameterStore& store, int64_t layer, const std::string& prefix,
                       const ModelDims& dims);

// ---- Routed experts, shared by the single-rank path and expert parallelism ----

// The routed experts this rank holds: [local experts, out, in] banks of one layer.
struct ExpertBanks {
  ExpertBank gate, up, down;
  int64_t count() const { return gate.count; }
  int64_t ffn() const { return gate.value.size(1); }     // Fe
  int64_t hidden() const { return gate.value.size(2); }  // H
};

// What the grouped SwiGLU of one batch of expert rows keeps for its backward.
struct ExpertActivations {
  std::vector<int64_t> counts;  // [local experts]: rows of each expert, consecutive
  Tensor xp, gp, up, ap;        // input rows, gate/up outputs, activation
  Tensor d_yp, d_gp, d_up;      // kept by backward_input for backward_weight
  std::vector<Tensor*> saved() { return {&xp, &gp, &up, &ap}; }
};
// yp [rows, H] = Expert_g(xp rows of group g) for rows grouped by local expert (counts).
Tensor experts_forward(const ExpertBanks& banks, const Tensor& xp,
                       const std::vector<int64_t>& counts, ExpertActivations& act);
// d_yp [rows, H] -> d_xp [rows, H]; keeps what experts_backward_weight needs.
Tensor experts_backward_input(const ExpertBanks& banks, const Tensor& d_yp, ExpertActivations& act);
// Accumulates the banks' gradients and frees the activations.
void experts_backward_weight(const ExpertBanks& banks, ExpertActivations& act);

// Whatever an engine keeps between a layer's forward and its backward.
struct RoutedExpertsState {
  virtual ~RoutedExpertsState() = default;
  // The activations kept for the backward (models/deepseek_v3/saved_activations.h may store
  // them in bf16; the engine's backward reads them through ops, which widen them).
  virtual std::vector<Tensor*> saved_activations() { return {}; }
  int64_t dropped_slots = 0;  // (token, expert) slots over capacity: not computed, weight 0
};

// Computes the routed part of the MoE layer, Σ_j w[t, j] · Expert_{idx[t, j]}(x_t), when the
// experts are spread over ranks (expert parallelism; parallel/ep implements it). Each rank
// passes its own tokens; the experts it holds serve every rank's tokens.
class RoutedExpertsEngine {
 public:
  virtual ~RoutedExpertsEngine() = default;
  // x [T, H], indices [T, k] (I32, global expert ids), weights [T, k] -> [T, H].
  // `overlap` runs exactly once, while the first all-to-all is in flight (the shared expert).
  // seq: tokens per sequence (capacity is per sequence, so drops do not depend on the layout).
  virtual Tensor forward(const Tensor& x, const Tensor& indices, const Tensor& weights,
                         int64_t seq, const ExpertBanks& banks,
                         const std::function<void()>& overlap,
                         std::shared_ptr<RoutedExpertsState>& state) const = 0;
  // dout [T, H] -> d x [T, H] of the routed part. The gate-weight gradient [T, k] is handed to
  // `overlap`, which runs exactly once while the first all-to-all is in flight (router and
  // shared-expert backward).
  virtual Tensor backward_input(const Tensor& dout, const ExpertBanks& banks,
                                const std::function<void(const Tensor& d_weights)>& overlap,
                                RoutedExpertsState& state) const = 0;
  // Expert weight gradients (local: every token of a held expert came to this rank).
  virtual void backward_weight(const ExpertBanks& banks, RoutedExpertsState& state) const = 0;

  // One micro-batch's forward and another's backward_input in one call, as DualPipe pairs them:
  // an engine may interleave the two so that each one's all-to-alls travel while the other
  // computes. The results are those of forward, then backward_input. The default runs them
  // one after the other.
  struct ForwardInput {
    const Tensor& x;
    const Tensor& indices;
    const Tensor& weights;
    int64_t seq;
    const ExpertBanks& banks;
    const std::function<void()>& overlap;
    std::shared_ptr<RoutedExpertsState>& state;
  };
  struct BackwardInput {
    const Tensor& dout;
    const ExpertBanks& banks;
    const std::function<void(const Tensor& d_weights)>& overlap;
    RoutedExpertsState& state;
  };
  struct Paired {
    Tensor forward_out;  // forward's result
    Tensor backward_dx;  // backward_input's result
  };
  virtual Paired forward_backward_input(const ForwardInput& forward_in,
                                        const BackwardInput& backward_in) const {
    Paired out;
    out.forward_out = forward(forward_in.x, forward_in.indices, forward_in.weights, forward_in.seq,
                              forward_in.banks, forward_in.overlap, forward_in.state);
    out.backward_dx =
        backward_input(backward_in.dout, backward_in.banks, backward_in.overlap, backward_in.state);
    return out;
  }
};

struct MoeContext {
  SequenceLayout layout;
  LinearStep router;
  Tensor indices;  // [T, k] I32
  Tensor weights;  // [T, k] gate weights
  Tensor scores;   // [T, E] router scores
  ops::PermutePlan plan;
  Tensor xp, gp, up, ap, yp;  // permuted expert input, gate/up outputs, activation, output
  Tensor d_yp, d_gp, d_up;    // kept by backward_input for backward_weight
  FfnContext shared;
  // Sequence-wise balance loss: Σ over rows of L_bal, and the coefficient its gradient uses.
  double balance_sum = 0.0;
  float balance_coef = 0.0f;
  // [rows, E]: each row's weight g_e of P_e (f_e, plus V2's device and communication terms);
  // a constant for the gradient.
  Tensor balance_f;
  std::vector<int64_t> tokens_per_expert;  // [E] this forward's load
  // Expert parallelism: the engine's state (null on the single-rank path) and its drops.
  std::shared_ptr<RoutedExpertsState> routed;
  int64_t dropped_slots = 0;
};

class MoeLayer {
 public:
  // tp splits only the shared expert (its own all-reduces); the router and the routed experts
  // see the whole replicated input on every TP rank.
  MoeLayer(const ModelDims& dims, MoeWeights weights, parallel::tp::TpGroup tp = {})
      : dims_(dims), w_(std::move(weights)), shared_(w_.shared, tp) {}

  // x [T, H] -> [T, H]. balance_coef scales Σ_rows L_bal in the loss (α / global rows; 0 = off).
  Tensor forward(const Tensor& x, const SequenceLayout& layout, float balance_coef,
                 MoeContext& ctx) const;
  Tensor backward_input(const Tensor& dout, MoeContext& ctx) const;
  void backward_weight(MoeContext& ctx) const;
  // forward(x, layout, balance_coef, forward_ctx) of one micro-batch and
  // backward_layer.backward_input(dout, backward_ctx) of another, with the same results; the
  // backward may be this layer's or another's (DualPipe pairs the forward of one pipeline
  // stage's layer with the backward of another stage's). Under expert parallelism the engine
  // interleaves the two (RoutedExpertsEngine::forward_backward_input); otherwise they run one
  // after the other. Returns {forward output, input gradient}.
  std::pair<Tensor, Tensor> forward_backward_input(const Tensor& x, const SequenceLayout& layout,
                                                   float balance_coef, MoeContext& forward_ctx,
                                                   const MoeLayer& backward_layer,
                                                   const Tensor& dout,
                                                   MoeContext& backward_ctx) const;

  const Tensor& router_bias() const { return w_.router_bias; }

  // Runs the routed experts through `engine` (expert parallelism); null restores the
  // single-rank path, which needs every expert in this rank's store.
  void set_routed_engine(std::shared_ptr<const RoutedExpertsEngine> engine);
  const RoutedExpertsEngine* routed_engine() const { return engine_.get(); }
  ExpertBanks banks() const { return ExpertBanks{w_.gate, w_.up, w_.down}; }

 private:
  Tensor forward_expert_parallel(const Tensor& x, MoeContext& ctx) const;
  Tensor backward_input_expert_parallel(const Tensor& dout, MoeContext& ctx) const;
  // The pieces of those two around the engine's call: the router before the forward's, the
  // shared expert and balance loss after; the router and shared-expert backward that the
  // backward's call runs while its first all-to-all flies (writing dx_local).
  void route(const Tensor& x, MoeContext& ctx) const;
  Tensor finish_forward(Tensor out, const Tensor& shared, MoeContext& ctx) const;
  std::function<void(const Tensor&)> local_backward(const Tensor& dout, MoeContext& ctx,
                                                    Tensor& dx_local) const;
  Tensor finish_backward(Tensor dx, const Tensor& dx_local, MoeContext& ctx) const;

  // The sequence-wise balance loss (ops::balance_loss_forward/backward) of ctx's routing.
  ops::BalanceLossShape balance_shape(const MoeContext& ctx) const;
  void balance_forward(MoeContext& ctx) const;
  void balance_backward(const MoeContext& ctx, Tensor& dlogits) const;

  ModelDims dims_;
  MoeWeights w_;
  SwiGluFfn shared_;
  std::shared_ptr<const RoutedExpertsEngine> engine_;
};

}  // namespace trident::models
