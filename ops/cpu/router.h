#pragma once
// The DeepSeek-V3 / V2 router and the token permutation that feeds the experts.
#include <vector>

#include "runtime/core/tensor.h"

namespace trident::ops::cpu {

struct RouterSettings {
  int64_t experts = 1;
  int64_t top_k = 1;
  int64_t n_group = 1;     // experts are split into n_group contiguous groups
  int64_t topk_group = 1;  // groups a token may use
  // A group's score is the sum of its group_top best biased scores: 2 for DeepSeek-V3
  // (noaux_tc), 1 for DeepSeek-V2's group_limited_greedy (the group's best expert).
  int64_t group_top = 2;
  float scaling = 1.0f;   // routed_scaling_factor
  bool normalize = true;  // normalise the selected weights to sum 1 (norm_topk_prob)
  bool sigmoid = true;    // sigmoid scores (DeepSeek-V3); false = softmax
  // Node-limited routing (parallel.max_nodes_per_token): experts sit on nodes of
  // experts_per_node consecutive experts, and a token may use at most max_nodes of them: those
  // with the largest sum of their top ceil(k / max_nodes) biased scores. Applied before the
  // group limit and the top-k. 0 in either field = no node limit.
  int64_t experts_per_node = 0;
  int64_t max_nodes = 0;
};

// logits [T, E] (fp32) + bias [E] (selection only) ->
//   indices [T, k] (I32, experts in descending biased-score order),
//   weights [T, k] (the unbiased scores of the chosen experts, normalised, × scaling),
//   scores [T, E] (sigmoid/softmax scores, saved for backward).
void router_forward(const RouterSettings& settings, const Tensor& logits, const Tensor& bias,
                    Tensor& indices, Tensor& weights, Tensor& scores);
// dweights [T, k] -> dlogits [T, E] (overwrite). Selection is not differentiated.
void router_backward(const RouterSettings& settings, const Tensor& dweights, const Tensor& indices,
                     const Tensor& scores, Tensor& dlogits);

// Token permutation by expert. Slot j of token t goes to expert indices[t, j].
struct PermutePlan {
  int64_t tokens = 0;                      // T
  int64_t top_k = 0;                       // k (slots per token)
  std::vector<int64_t> tokens_per_expert;  // [E]
  std::vector<int64_t> slot_to_row;        // [T·k]: flattened slot t·k+j -> row in permuted order
  std::vector<int64_t> row_to_token;       // [T·k]: permuted row -> source token t
};
// Stable: rows of one expert keep token order.
PermutePlan make_permute_plan(const Tensor& indices, int64_t experts);
// out [T·k, D] = x rows in expert order.
void permute_forward(const PermutePlan& plan, const Tensor& x, Tensor& out);
// dx [T, D] (=|+=) sum of the rows that came from each token.
void permute_backward(const PermutePlan& plan, const Tensor& dout, Tensor& dx,
                      bool accumulate = false);
// out [T, D] = Σ_j weights[t, j] · y[slot_to_row[t·k+j]]
void unpermute_forward(const PermutePlan& plan, const Tensor& y, const Tensor& weights,
                       Tensor& out);
// dy [T·k, D] = weights · dout rows; dweights [T, k] = <dout[t], y[row]>.
void unpermute_backward(const PermutePlan& plan, const Tensor& dout, const Tensor& y,
                        const Tensor& weights, Tensor& dy, Tensor& dweights);

}  // namespace trident::ops::cpu
