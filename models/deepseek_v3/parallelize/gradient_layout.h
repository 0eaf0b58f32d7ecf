#pragma once
// How the model's gradients come about and are shared out over the ranks, read from each
// parameter's registry record (registry.h): which backward block completes a parameter's
// gradient, which ranks add their gradients of it, and whether the tensor-parallel ranks hold
// different elements of it or the same ones. The optimizer (runtime/train/optimizer.h) builds
// its reduction groups, its ZeRO-1 shards and its gradient-norm rule from these alone; nothing
// else consults layout flags to decide how a gradient is reduced or counted.
#include <cstdint>

#include "models/deepseek_v3/registry.h"
#include "parallel/mesh_layout.h"

namespace trident::models::parallelize {

// The backward blocks: units whose weight gradients complete in one piece of a step's backward
// (a pipeline stage's W, or the last stage's B that runs the head and MTP). Ids are dense:
// the embedding, decoder layer 0 … L−1, the output head (final norm, lm_head), MTP depth 1 … D.
class GradientBlocks {
 public:
  explicit GradientBlocks(int64_t num_layers) : layers_(num_layers) {}
  int embedding() const { return 0; }
  int layer(int64_t index) const { return static_cast<int>(1 + index); }
  int head() const { return static_cast<int>(1 + layers_); }
  int mtp(int64_t depth) const { return static_cast<int>(1 + layers_ + depth); }
  // The block whose backward writes `spec`'s gradient. lm_head and the embedding also receive
  // contributions from the MTP depths; those run in the same action as the head.
  int of(const ParamSpec& spec) const;

 private:
  int64_t layers_;
};

// How one parameter's gradient is spread over the ranks of its pipeline stage.
struct GradientSharding {
  // The ranks that hold the same elements and must add their gradients: the data-parallel
  // group, or, for routed experts under expert parallelism, the expert-data-parallel group
  // (the ranks holding the same experts).
  parallel::MeshAxis reduce_over = parallel::MeshAxis::Dp;
  // The tensor-parallel ranks of one data-parallel index hold different elements (a TP slice,
  // or different routed experts when the EP group folds over them); false: every TP rank holds
  // the same elements with the same gradient (replicated parameters, and routed experts without
  // expert parallelism, which every TP rank computes on all tokens).
  bool distinct_over_tp = false;
};

GradientSharding gradient_sharding(const ParamSpec& spec, const parallel::MeshSizes& sizes);

}  // namespace trident::models::parallelize
