#include "runtime/train/grpo/vocab_sharded.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "ops/ops.h"
#include "parallel/comm/sum_in_rank_order.h"

namespace trident::train::grpo {

bool vocab_sharded(const models::DeepSeekV3Model& model) { return model.tp().split(); }

Tensor gather_vocab_logits(const models::DeepSeekV3Model& model, const Tensor& logits) {
  if (!vocab_sharded(model)) return logits;
  const parallel::tp::TpGroup& tp = model.tp();
  const int64_t rows = logits.size(0), local = logits.size(1), vocab = local * tp.size;
  TRIDENT_CHECK(vocab == model.dims().vocab, "gather_vocab_logits: ", local, " columns × ",
                tp.size, " ranks for a vocabulary of ", model.dims().vocab);
  Tensor gathered = Tensor::empty({tp.size * rows * local}, DType::F32, logits.device());
  tp.comm->all_gather(logits, gathered)->wait();
  // Rank r's block is its [rows, V/tp] slice: interleave the blocks into whole rows.
  Tensor out = Tensor::empty({rows, vocab}, DType::F32, logits.device());
  for (int64_t r = 0; r < tp.size; ++r) {
    const Tensor block = gathered.narrow(r * rows * local, (r + 1) * rows * local);
    ops::copy_columns(block, local, 0, out, vocab, r * local, local);
  }
  return out;
}

namespace {

// Vocabulary-parallel softmax statistics of the given rows (the same on every TP rank).
struct ShardedStats {
  std::vector<double> lse;
  std::vector<double> mean_logit;    // Σ p · logit
  std::vector<double> target_logit;  // the logit of the row's target
};
// `logits` is a host copy of the shard (see model_completion_scores).
ShardedStats sharded_stats(const models::DeepSeekV3Model& model, const Tensor& logits,
                           const TokenRows& at) {
  const parallel::tp::TpGroup& tp = model.tp();
  const int64_t local = logits.size(1), begin = model.vocab_begin();
  const size_t n = at.row.size();
  const float* data = logits.data<float>();
  // The row max over the whole vocabulary: max is exact, so it equals the single-rank max.
  Tensor max = Tensor::empty({std::max<int64_t>(1, static_cast<int64_t>(n))});
  float* m = max.data<float>();
  m[0] = -std::numeric_limits<float>::infinity();
  for (size_t i = 0; i < n; ++i) {
    const float* l = data + at.row[i] * local;
    m[i] = *std::max_element(l, l + local);
  }
  if (n > 0) tp.comm->all_reduce(max, parallel::comm::ReduceOp::Max)->wait();
  // [Z, W, z_t] per row, local parts, summed over TP in double.
  std::vector<double> parts(3 * n, 0.0);
  for (size_t i = 0; i < n; ++i) {
    const float* l = data + at.row[i] * local;
    double total = 0.0, weighted = 0.0;
    for (int64_t v = 0; v < local; ++v) {
      const double e = std::exp(l[v] - static_cast<double>(m[i]));
      total += e;
      weighted += e * l[v];
    }
    parts[3 * i] = total;
    parts[3 * i + 1] = weighted;
    const int64_t column = at.target[i] - begin;
    if (column >= 0 && column < local) parts[3 * i + 2] = l[column];
  }
  parts = parallel::comm::sum_in_rank_order(tp.comm, parts);
  ShardedStats out;
  for (size_t i = 0; i < n; ++i) {
    out.lse.push_back(static_cast<double>(m[i]) + std::log(parts[3 * i]));
    out.mean_logit.push_back(parts[3 * i + 1] / parts[3 * i]);
    out.target_logit.push_back(parts[3 * i + 2]);
  }
  return out;
}

}  // namespace

CompletionScores model_completion_scores(const models::DeepSeekV3Model& model,
                                         const Tensor& logits, const RowBatch& rows,
                                         const std::vector<ScoredRow>& source) {
  if (!vocab_sharded(model)) return completion_scores(logits, rows, source);
  const std::vector<std::vector<int32_t>> tokens = completions_of(source);
  // Under tensor parallelism the scores are host loops over the logit shard: on a device, one
  // copy of it to the host per micro-batch (docs/cuda.md, "Not done yet").
  const ShardedStats stats = sharded_stats(model, logits.on(Device::CPU), token_rows(rows, tokens));
  CompletionScores out;
  out.logp.resize(static_cast<size_t>(rows.batch));
  out.entropy.resize(static_cast<size_t>(rows.batch));
  size_t i = 0;
  for (int64_t b = 0; b < rows.batch; ++b) {
    for (size_t j = 0; j < tokens[static_cast<size_t>(b)].size(); ++j, ++i) {
      out.logp[static_cast<size_t>(b)].push_back(stats.target_logit[i] - stats.lse[i]);
      out.entropy[static_cast<size_t>(b)].push_back(stats.lse[i] - stats.mean_logit[i]);
    }
  }
  return out;
}

Tensor model_completion_logit_grad(const models::DeepSeekV3Model& model, const Tensor& logits,
                                   const RowBatch& rows,
                                   const std::vector<std::vector<int32_t>>& tokens,
                                   const std::vector<std::vector<double>>& dlogp) {
  if (!vocab_sharded(model)) return completion_logit_grad(logits, rows, tokens, dlogp);
  // Statistics of every completion row, weighted or not, so the collective is the same size on
  // every TP rank by construction.
  const TokenRows at = token_rows(rows, tokens);
  // Host loops over a host copy of the shard, the gradient copied back (as for the scores).
  const Tensor host_logits = logits.on(Device::CPU);
  const ShardedStats stats = sharded_stats(model, host_logits, at);
  const int64_t local = logits.size(1), begin = model.vocab_begin();
  Tensor grad = Tensor::zeros(logits.shape());
  const float* data = host_logits.data<float>();
  float* out = grad.data<float>();
  size_t i = 0;
  for (int64_t b = 0; b < rows.batch; ++b) {
    const auto& w = dlogp[static_cast<size_t>(b)];
    for (size_t j = 0; j < tokens[static_cast<size_t>(b)].size(); ++j, ++i) {
      if (w[j] == 0.0) continue;
      const float* l = data + at.row[i] * local;
      float* g = out + at.row[i] * local;
      for (int64_t v = 0; v < local; ++v) {
        g[v] = static_cast<float>(-w[j] * std::exp(l[v] - stats.lse[i]));
      }
      const int64_t column = at.target[i] - begin;
      if (column >= 0 && column < local) g[column] += static_cast<float>(w[j]);
    }
  }
  return grad.on(logits.device());
}

}  // namespace trident::train::grpo
