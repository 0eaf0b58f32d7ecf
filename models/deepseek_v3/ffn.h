#pragma once
// SwiGLU feed-forward: FFN(x) = linear(silu(linear(x, gate)) ⊙ linear(x, up), down).
// Used for the dense layers and for the shared experts of MoE layers.
#include <string>

#include "models/deepseek_v3/blocks.h"

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
  explicit SwiGluFfn(FfnWeights weights) : w_(std::move(weights)) {}
  // x [T, H] -> [T, H]
  Tensor forward(const Tensor& x, FfnContext& ctx) const;
  // dy [T, H] -> dx [T, H]
  Tensor backward_input(const Tensor& dy, FfnContext& ctx) const;
  void backward_input_into(const Tensor& dy, FfnContext& ctx, Tensor& dx, bool accumulate) const;
  void backward_weight(FfnContext& ctx) const;

 private:
  FfnWeights w_;
};

}  // namespace trident::models
