#pragma once
// The DeepSeek-V3 / V2 router and the token permutation that feeds the experts.
#include <vector>

#include "ops/types.h"

namespace trident::ops::cpu {

using ops::PermutePlan;
using ops::RouterSettings;

// logits [T, E] (fp32) + bias [E] (selection only) ->
//   indices [T, k] (I32, experts in descending biased-score order),
//   weights [T, k] (the unbiased scores of the chosen experts, normalised, × scaling),
//   scores [T, E] (sigmoid/softmax scores, saved for backward).
void router_forward(const RouterSettings& settings, const Tensor& logits, const Tensor& bias,
                    Tensor& indices, Tensor& weights, Tensor& scores);
// dweights [T, k] -> dlogits [T, E] (overwrite). Selection is not differentiated.
void router_backward(const RouterSettings& settings, const Tensor& dweights, const Tensor& indices,
                     const Tensor& scores, Tensor& dlogits);

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
