#pragma once
// Per-token log-probabilities of completions under a model, and the logits gradient of an
// objective that is a per-token weight on them. Rows are prompt + completion, padded at the end
// to one length (causal attention: padding never reaches earlier positions).
#include <cstdint>
#include <vector>

#include "models/deepseek_v3/model.h"

namespace trident::train::grpo {

struct ScoredRow {
  std::vector<int32_t> prompt;
  std::vector<int32_t> completion;
};

// The rows as model inputs: seq = max(|prompt| + |completion|) − 1.
struct RowBatch {
  int64_t batch = 0;
  int64_t seq = 0;
  Tensor ids;                       // [batch · seq] I32
  std::vector<int64_t> first_row;   // logits row predicting completion token 0 of each row
  std::vector<int64_t> completion;  // completion lengths
};
RowBatch make_row_batch(const std::vector<ScoredRow>& rows);

// Each row's completion tokens.
std::vector<std::vector<int32_t>> completions_of(const std::vector<ScoredRow>& source);

// The logits rows that predict the completions' tokens, in (row, token) order, and the token
// each of them predicts.
struct TokenRows {
  std::vector<int64_t> row;
  std::vector<int32_t> target;
};
TokenRows token_rows(const RowBatch& rows, const std::vector<std::vector<int32_t>>& tokens);

struct CompletionScores {
  std::vector<std::vector<double>> logp;     // [row][token] log π(token)
  std::vector<std::vector<double>> entropy;  // [row][token] entropy of π at that position
};
CompletionScores completion_scores(const Tensor& logits, const RowBatch& rows,
                                   const std::vector<ScoredRow>& source);

// d loss / d logits for d loss / d log π(token) = dlogp[row][token]: at a completion position
// dlogits = dlogp · (onehot(token) − softmax); zero elsewhere.
Tensor completion_logit_grad(const Tensor& logits, const RowBatch& rows,
                             const std::vector<std::vector<int32_t>>& tokens,
                             const std::vector<std::vector<double>>& dlogp);

}  // namespace trident::train::grpo
