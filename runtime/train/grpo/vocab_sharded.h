#pragma once
// GRPO on a tensor-parallel policy, where lm_head (and so every logits row) is split over the
// vocabulary: each TP rank holds columns [vocab_begin, vocab_begin + V/tp) of every row.
//
// - Sampling needs whole rows: gather_vocab_logits all-gathers the slices over the TP group, so
//   every TP rank holds the same row and, with the same CounterRng stream, picks the same token.
// - Scores and their gradient never gather: a vocabulary-parallel log-softmax all-reduces the
//   row max (max) and Σ exp(logit − max), Σ exp(logit − max) · logit and the chosen token's logit
//   (sums, in double, added in rank order so every TP rank gets the same bits); log π(token) =
//   z_t − lse, the entropy is lse − Σ p · logit, and the logits gradient is computed only on this
//   rank's slice.
// Without tensor parallelism every function here is the single-rank code of scoring.h.
#include <vector>

#include "models/deepseek_v3/model.h"
#include "runtime/train/grpo/scoring.h"

namespace trident::train::grpo {

// Whether the model's logits are a vocabulary slice (tensor parallelism).
bool vocab_sharded(const models::DeepSeekV3Model& model);

// logits [rows, V/tp] of this rank -> [rows, V] (the input itself without TP). Collective over
// the model's TP group.
Tensor gather_vocab_logits(const models::DeepSeekV3Model& model, const Tensor& logits);

// completion_scores on the model's logits (a slice under TP; collective over the TP group).
CompletionScores model_completion_scores(const models::DeepSeekV3Model& model,
                                         const Tensor& logits, const RowBatch& rows,
                                         const std::vector<ScoredRow>& source);

// completion_logit_grad on the model's logits: under TP the gradient of this rank's slice
// (collective over the TP group).
Tensor model_completion_logit_grad(const models::DeepSeekV3Model& model, const Tensor& logits,
                                   const RowBatch& rows,
                                   const std::vector<std::vector<int32_t>>& tokens,
                                   const std::vector<std::vector<double>>& dlogp);

}  // namespace trident::train::grpo
