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

// The completion tokens' rows of the logit shard, gathered where the logits live, with their
// targets: what the vocabulary-shard ops read.
struct ListedShard {
  Tensor logits;   // [n, V/tp]
  Tensor targets;  // [n] i32, global ids
};
ListedShard listed_shard(const Tensor& logits, const TokenRows& at) {
  const auto n = static_cast<int64_t>(at.row.size());
  const std::vector<int32_t> rows(at.row.begin(), at.row.end());
  const Tensor index = Tensor::from_ints(rows, {n}).on(logits.device());
  ListedShard out{Tensor::empty({n, logits.size(1)}, DType::F32, logits.device()),
                  Tensor::from_ints(at.target, {n}).on(logits.device())};
  ops::gather_rows(logits, index, out.logits);
  return out;
}

// Vocabulary-parallel softmax statistics of the listed rows (the same on every TP rank).
struct ShardedStats {
  std::vector<double> lse;
  std::vector<double> mean_logit;    // Σ p · logit
  std::vector<double> target_logit;  // the logit of the row's target
};
ShardedStats sharded_stats(const models::DeepSeekV3Model& model, const ListedShard& shard) {
  const parallel::tp::TpGroup& tp = model.tp();
  const int64_t n = shard.logits.size(0);
  // The row max over the whole vocabulary: max is exact, so it equals the single-rank max. The
  // n floats come to the host for the all-reduce (a synchronisation on a GPU).
  Tensor local_max = Tensor::empty({n}, DType::F32, shard.logits.device());
  ops::shard_row_max(shard.logits, local_max);
  Tensor max = Tensor::full({std::max<int64_t>(1, n)}, -std::numeric_limits<float>::infinity());
  if (n > 0) {
    max.narrow(0, n).copy_from(local_max);
    tp.comm->all_reduce(max, parallel::comm::ReduceOp::Max)->wait();
  }
  // [Z, W, z_t] per row, local parts, summed over TP in double.
  std::vector<double> parts = ops::shard_softmax_stats(
      shard.logits, shard.targets, model.vocab_begin(), max.narrow(0, n).on(shard.logits.device()));
  parts = parallel::comm::sum_in_rank_order(tp.comm, parts);
  const float* m = max.data<float>();
  ShardedStats out;
  for (int64_t i = 0; i < n; ++i) {
    const auto k = static_cast<size_t>(3 * i);
    out.lse.push_back(static_cast<double>(m[i]) + std::log(parts[k]));
    out.mean_logit.push_back(parts[k + 1] / parts[k]);
    out.target_logit.push_back(parts[k + 2]);
  }
  return out;
}

}  // namespace

CompletionScores model_completion_scores(const models::DeepSeekV3Model& model,
                                         const Tensor& logits, const RowBatch& rows,
                                         const std::vector<ScoredRow>& source) {
  if (!vocab_sharded(model)) return completion_scores(logits, rows, source);
  const std::vector<std::vector<int32_t>> tokens = completions_of(source);
  const ShardedStats stats = sharded_stats(model, listed_shard(logits, token_rows(rows, tokens)));
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
  const ListedShard shard = listed_shard(logits, at);
  const ShardedStats stats = sharded_stats(model, shard);
  std::vector<double> weights;
  for (int64_t b = 0; b < rows.batch; ++b) {
    const auto& w = dlogp[static_cast<size_t>(b)];
    weights.insert(weights.end(), w.begin(),
                   w.begin() + static_cast<std::ptrdiff_t>(tokens[static_cast<size_t>(b)].size()));
  }
  Tensor d_listed = Tensor::empty(shard.logits.shape(), DType::F32, logits.device());
  ops::shard_logprob_backward(shard.logits, shard.targets, model.vocab_begin(), stats.lse, weights,
                              d_listed);
  // Back into the logits' rows, one slot per row: a completion token's row, or none (zero).
  std::vector<int32_t> slot(static_cast<size_t>(logits.size(0)), -1);
  for (size_t i = 0; i < at.row.size(); ++i) {
    int32_t& s = slot[static_cast<size_t>(at.row[i])];
    TRIDENT_CHECK(s < 0, "logits row ", at.row[i], " holds two completion tokens");
    s = static_cast<int32_t>(i);
  }
  Tensor grad = Tensor::empty(logits.shape(), DType::F32, logits.device());
  ops::combine_rows(d_listed, Tensor::from_ints(slot, {logits.size(0)}).on(logits.device()),
                    /*top_k=*/1, Tensor(), /*first_token=*/0, grad);
  return grad;
}

}  // namespace trident::train::grpo
