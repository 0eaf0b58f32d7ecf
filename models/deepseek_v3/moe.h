#pragma once
// DeepSeekMoE (docs/model.md): sigmoid router with bias-corrected, group-limited top-k
// selection, routed SwiGLU experts run as grouped GEMMs over tokens permuted by expert,
// combined with the gate weights, plus the always-on shared expert. Also computes the
// sequence-wise balance loss and exposes the step's per-expert token counts.
#include <cstdint>
#include <string>
#include <vector>

#include "models/deepseek_v3/blocks.h"
#include "models/deepseek_v3/dims.h"
#include "models/deepseek_v3/ffn.h"
#include "models/deepseek_v3/sequence.h"
#include "ops/cpu/router.h"

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

struct MoeContext {
  SequenceLayout layout;
  LinearStep router;
  Tensor indices;  // [T, k] I32
  Tensor weights;  // [T, k] gate weights
  Tensor scores;   // [T, E] router scores
  ops::cpu::PermutePlan plan;
  Tensor xp, gp, up, ap, yp;  // permuted expert input, gate/up outputs, activation, output
  Tensor d_yp, d_gp, d_up;    // kept by backward_input for backward_weight
  FfnContext shared;
  // Sequence-wise balance loss: Σ over rows of L_bal, and the coefficient its gradient uses.
  double balance_sum = 0.0;
  float balance_coef = 0.0f;
  std::vector<float> balance_f;  // [rows, E]: f_e of each row (a constant for the gradient)
  std::vector<int64_t> tokens_per_expert;  // [E] this forward's load
};

class MoeLayer {
 public:
  // tp splits only the shared expert (its own all-reduces); the router and the routed experts
  // see the whole replicated input on every TP rank.
  MoeLayer(const ModelDims& dims, MoeWeights weights, parallel::TpGroup tp = {})
      : dims_(dims), w_(std::move(weights)), shared_(w_.shared, tp) {}

  // x [T, H] -> [T, H]. balance_coef scales Σ_rows L_bal in the loss (α / global rows; 0 = off).
  Tensor forward(const Tensor& x, const SequenceLayout& layout, float balance_coef,
                 MoeContext& ctx) const;
  Tensor backward_input(const Tensor& dout, MoeContext& ctx) const;
  void backward_weight(MoeContext& ctx) const;

  const Tensor& router_bias() const { return w_.router_bias; }

 private:
  void balance_forward(MoeContext& ctx) const;
  void balance_backward(const MoeContext& ctx, Tensor& dlogits) const;

  ModelDims dims_;
  MoeWeights w_;
  SwiGluFfn shared_;
};

}  // namespace trident::models
