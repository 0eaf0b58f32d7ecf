#pragma once
// Vocabulary-parallel embedding and cross-entropy: each TP rank holds V/tp consecutive rows of
// the embedding table and of lm_head, [vocab_begin, vocab_begin + V/tp).
//
// Embedding: a rank looks up the ids it owns and writes zeros for the others; the sum over
// TP (a g operator, done by the caller) is the full embedding. Backward is local: every rank
// holds the whole output gradient and scatters the rows of its own ids.
//
// Cross-entropy over vocab-split logits never gathers the full-vocabulary row:
//   M   = max over TP of the local row max               (all-reduce max, [T])
//   Z   = Σ over TP of Σ_local exp(logit − M)            (all-reduce sum, [T], packed with ↓)
//   z_t = the target's logit, from the rank that owns it (all-reduce sum, [T])
//   lse = M + log Z,  CE = lse − z_t
// Backward is local: dlogits = (exp(logit − lse) − onehot) · grad_scale on the local slice.
#include <cstdint>

#include "ops/ops.h"
#include "parallel/tp/tp_group.h"
#include "runtime/core/tensor.h"

namespace trident::parallel::tp {

// ids [T] I32, table_local [V/tp, H] -> out [T, H]: rows of owned ids, zeros elsewhere.
void vocab_parallel_embedding_local(const Tensor& ids, const Tensor& table_local,
                                    int64_t vocab_begin, Tensor& out);
// dtable_local += dout rows of the owned ids.
void vocab_parallel_embedding_backward_weight(const Tensor& ids, const Tensor& dout,
                                              int64_t vocab_begin, Tensor& dtable_local);

// logits_local [T, V/tp]; targets [T] global ids or ops::kIgnoreIndex; lse [T] receives
// the global logsumexp. The result (loss sum over counted tokens, count) is the same on every
// rank. With a one-rank group it equals ops::cross_entropy_forward.
ops::CrossEntropyResult vocab_parallel_cross_entropy_forward(const TpGroup& tp,
                                                             const Tensor& logits_local,
                                                             const Tensor& targets,
                                                             int64_t vocab_begin, Tensor& lse);
// dlogits_local = (softmax − onehot) · grad_scale on this rank's slice (no communication).
void vocab_parallel_cross_entropy_backward(const Tensor& logits_local, const Tensor& targets,
                                           const Tensor& lse, int64_t vocab_begin, float grad_scale,
                                           Tensor& dlogits_local);

}  // namespace trident::parallel::tp
