#include "runtime/train/grpo/scoring.h"

#include <algorithm>

#include "ops/ops.h"
#include "runtime/io/tokenizer.h"

namespace trident::train::grpo {

RowBatch make_row_batch(const std::vector<ScoredRow>& rows) {
  RowBatch out;
  out.batch = static_cast<int64_t>(rows.size());
  int64_t longest = 2;
  for (const ScoredRow& r : rows) {
    TRIDENT_CHECK(!r.prompt.empty(), "a scored row needs a prompt");
    longest =
        std::max<int64_t>(longest, static_cast<int64_t>(r.prompt.size() + r.completion.size()));
  }
  out.seq = longest - 1;
  std::vector<int32_t> ids(static_cast<size_t>(out.batch * out.seq), io::ByteTokenizer::kPad);
  for (int64_t b = 0; b < out.batch; ++b) {
    const ScoredRow& r = rows[static_cast<size_t>(b)];
    std::vector<int32_t> all = r.prompt;
    all.insert(all.end(), r.completion.begin(), r.completion.end());
    for (int64_t s = 0; s < std::min<int64_t>(out.seq, static_cast<int64_t>(all.size())); ++s) {
      ids[static_cast<size_t>(b * out.seq + s)] = all[static_cast<size_t>(s)];
    }
    out.first_row.push_back(b * out.seq + static_cast<int64_t>(r.prompt.size()) - 1);
    out.completion.push_back(static_cast<int64_t>(r.completion.size()));
  }
  out.ids = Tensor::from_ints(ids, {out.batch * out.seq});
  return out;
}

std::vector<std::vector<int32_t>> completions_of(const std::vector<ScoredRow>& source) {
  std::vector<std::vector<int32_t>> out;
  for (const ScoredRow& r : source) out.push_back(r.completion);
  return out;
}

TokenRows token_rows(const RowBatch& rows, const std::vector<std::vector<int32_t>>& tokens) {
  TokenRows out;
  for (int64_t b = 0; b < rows.batch; ++b) {
    const auto& toks = tokens[static_cast<size_t>(b)];
    for (size_t j = 0; j < toks.size(); ++j) {
      out.row.push_back(rows.first_row[static_cast<size_t>(b)] + static_cast<int64_t>(j));
      out.target.push_back(toks[j]);
    }
  }
  return out;
}

namespace {
// The tokens as targets of the rows that predict them (the ignore index elsewhere), on the
// logits' device.
Tensor targets_of(const Tensor& logits, const TokenRows& at) {
  std::vector<int32_t> targets(static_cast<size_t>(logits.size(0)), ops::kIgnoreIndex);
  for (size_t i = 0; i < at.row.size(); ++i) {
    targets[static_cast<size_t>(at.row[i])] = at.target[i];
  }
  return Tensor::from_ints(targets, {logits.size(0)}).on(logits.device());
}
}  // namespace

CompletionScores completion_scores(const Tensor& logits, const RowBatch& rows,
                                   const std::vector<ScoredRow>& source) {
  const std::vector<std::vector<int32_t>> tokens = completions_of(source);
  const TokenRows at = token_rows(rows, tokens);
  const std::vector<ops::TokenScore> scores = ops::token_scores(logits, targets_of(logits, at));
  CompletionScores out;
  out.logp.resize(static_cast<size_t>(rows.batch));
  out.entropy.resize(static_cast<size_t>(rows.batch));
  size_t i = 0;
  for (int64_t b = 0; b < rows.batch; ++b) {
    for (size_t j = 0; j < tokens[static_cast<size_t>(b)].size(); ++j, ++i) {
      const ops::TokenScore& score = scores[static_cast<size_t>(at.row[i])];
      out.entropy[static_cast<size_t>(b)].push_back(score.entropy);
      out.logp[static_cast<size_t>(b)].push_back(score.logprob);
    }
  }
  return out;
}

Tensor completion_logit_grad(const Tensor& logits, const RowBatch& rows,
                             const std::vector<std::vector<int32_t>>& tokens,
                             const std::vector<std::vector<double>>& dlogp) {
  const TokenRows at = token_rows(rows, tokens);
  std::vector<double> weights(static_cast<size_t>(logits.size(0)), 0.0);
  size_t i = 0;
  for (int64_t b = 0; b < rows.batch; ++b) {
    const std::vector<double>& w = dlogp[static_cast<size_t>(b)];
    for (size_t j = 0; j < tokens[static_cast<size_t>(b)].size(); ++j, ++i) {
      weights[static_cast<size_t>(at.row[i])] = w[j];
    }
  }
  Tensor grad = Tensor::empty(logits.shape(), DType::F32, logits.device());
  ops::token_logprobs_backward(logits, targets_of(logits, at), weights, grad);
  return grad;
}

}  // namespace trident::train::grpo
