#include "runtime/train/grpo/scoring.h"

#include <algorithm>
#include <cmath>

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

namespace {
struct RowSoftmax {
  double lse = 0.0;
  double mean_logit = 0.0;  // Σ p · logit
};
RowSoftmax softmax_stats(const float* row, int64_t vocab) {
  const double max = *std::max_element(row, row + vocab);
  double total = 0.0;
  double weighted = 0.0;
  for (int64_t v = 0; v < vocab; ++v) {
    const double e = std::exp(row[v] - max);
    total += e;
    weighted += e * row[v];
  }
  return RowSoftmax{max + std::log(total), weighted / total};
}
}  // namespace

CompletionScores completion_scores(const Tensor& logits, const RowBatch& rows,
                                   const std::vector<ScoredRow>& source) {
  const int64_t vocab = logits.size(1);
  const float* data = logits.data<float>();
  CompletionScores out;
  out.logp.resize(static_cast<size_t>(rows.batch));
  out.entropy.resize(static_cast<size_t>(rows.batch));
  for (int64_t b = 0; b < rows.batch; ++b) {
    const auto& toks = source[static_cast<size_t>(b)].completion;
    for (size_t j = 0; j < toks.size(); ++j) {
      const float* l =
          data + (rows.first_row[static_cast<size_t>(b)] + static_cast<int64_t>(j)) * vocab;
      const RowSoftmax s = softmax_stats(l, vocab);
      out.entropy[static_cast<size_t>(b)].push_back(s.lse - s.mean_logit);
      out.logp[static_cast<size_t>(b)].push_back(static_cast<double>(l[toks[j]]) - s.lse);
    }
  }
  return out;
}

Tensor completion_logit_grad(const Tensor& logits, const RowBatch& rows,
                             const std::vector<std::vector<int32_t>>& tokens,
                             const std::vector<std::vector<double>>& dlogp) {
  const int64_t vocab = logits.size(1);
  Tensor grad = Tensor::zeros(logits.shape());
  const float* data = logits.data<float>();
  float* out = grad.data<float>();
  for (int64_t b = 0; b < rows.batch; ++b) {
    const auto& toks = tokens[static_cast<size_t>(b)];
    const auto& w = dlogp[static_cast<size_t>(b)];
    for (size_t j = 0; j < toks.size(); ++j) {
      if (w[j] == 0.0) continue;
      const int64_t row = rows.first_row[static_cast<size_t>(b)] + static_cast<int64_t>(j);
      const float* l = data + row * vocab;
      const double lse = softmax_stats(l, vocab).lse;
      float* g = out + row * vocab;
      for (int64_t v = 0; v < vocab; ++v) g[v] = static_cast<float>(-w[j] * std::exp(l[v] - lse));
      g[toks[j]] += static_cast<float>(w[j]);
    }
  }
  return grad;
}

}  // namespace trident::train::grpo
