#pragma once
// SwiGLU feed-forward: FFN(x) = linear(silu(linear(x, gate)) ⊙ linear(x, up), down).
// Used for the dense layers and for the shared experts of MoE layers.
//
// Tensor parallel: gate and up are column-parallel and down row-parallel (this rank holds F/tp
// of the intermediate features), so the forward all-reduces the output (g) and the backward
// all-reduces the input gradient (f); the weight gradients are local and exact.
#include <string>

#include "models/deepseek_v3/blocks.h"
#include "parallel/tp/tp_group.h"

namespace trident::models {

struct FfnWeights {
  Weight gate;  // [F, H]
  Weight up;    // [F, H]
  Weight down;  // [H, F]
};
// prefix: "model.layers.L.mlp." or "model.layers.L.mlp.shared_experts."
FfnWeights ffn_weights(ParameterStore& store, const std::string& prefix);

struct FfnContext {
  LinearStep gate, up, down;
  Tensor g, u;  // pre-activation gate and up outputs
};

class SwiGluFfn {
 public:
  explicit SwiGluFfn(FfnWeights weights, parallel::tp::TpGroup tp = {})
      : w_(std::move(weights)), tp_(tp) {}
  // x [T, H] -> [T, H]
  Tensor forward(const Tensor& x, FfnContext& ctx) const;
  // dy [T, H] -> dx [T, H] (complete: summed over TP)
  Tensor backward_input(const Tensor& dy, FfnContext& ctx) const;
  void backward_input_into(const Tensor& dy, FfnContext& ctx, Tensor& dx, bool accumulate) const;
  void backward_weight(FfnContext& ctx) const;

 private:
  FfnWeights w_;
  parallel::tp::TpGroup tp_;
};

}  // namespace trident::models
