// Token-level cross-entropy over the vocabulary, stable through a per-row logsumexp.
#include "ops/cpu/cross_entropy.h"

#include <algorithm>
#include <cmath>

#include "ops/cpu/detail.h"
#include "ops/cpu/vector_math.h"
#include "runtime/core/profiler.h"

namespace trident::ops::cpu {
namespace {

// The checked sizes, with the logits and targets they were read from.
struct VocabDims {
  int64_t tokens = 0;
  int64_t vocab = 0;
  const float* logits = nullptr;
  const int32_t* targets = nullptr;
};

// Checks logits [tokens, vocab] and their targets.
VocabDims checked_vocab(const Tensor& logits, const Tensor& targets) {
  detail::check_f32(logits, "cross_entropy logits");
  detail::check_i32(targets, "cross_entropy targets");
  VocabDims d{detail::rows(logits), detail::cols(logits), logits.data<float>(),
              targets.data<int32_t>()};
  detail::check_numel(targets, d.tokens, "cross_entropy targets");
  const int32_t* target = d.targets;
  for (int64_t t = 0; t < d.tokens; ++t) {
    TRIDENT_CHECK(target[t] == kIgnoreIndex || (target[t] >= 0 && target[t] < d.vocab), "target ",
                  target[t], " at position ", t, " outside [0, ", d.vocab,
                  ") and not the ignore index ", kIgnoreIndex);
  }
  return d;
}

// The same, and `per_token`, the f32 output or saved value with one element per token (lse,
// log-probs).
VocabDims vocab_dims(const Tensor& logits, const Tensor& targets, const Tensor& per_token,
                     const char* per_token_name) {
  const VocabDims d = checked_vocab(logits, targets);
  detail::check_f32(per_token, per_token_name);
  detail::check_numel(per_token, d.tokens, per_token_name);
  return d;
}

TRIDENT_AVX2_CLONE double row_logsumexp(const float* row, int64_t vocab) {
  const float max_logit = detail::max_f32(row, vocab);
  return static_cast<double>(max_logit) + std::log(detail::sum_exp_shifted(row, max_logit, vocab));
}

// dlogits of one row: (softmax − one-hot(target)) · grad_scale.
TRIDENT_AVX2_CLONE void row_softmax_gradient(const float* row, float row_lse, float grad_scale,
                                             int64_t vocab, float* out) {
#pragma omp simd
  for (int64_t v = 0; v < vocab; ++v) out[v] = detail::exp_f32(row[v] - row_lse) * grad_scale;
}

// log Σ exp and Σ p · logit of one row, in double with libm's exp: GRPO's scores and their
// gradient, which every layout and the PyTorch reference reproduce.
struct RowSoftmax {
  double lse = 0.0;
  double mean_logit = 0.0;
};
RowSoftmax row_softmax_stats(const float* row, int64_t vocab) {
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

CrossEntropyResult cross_entropy_forward(const Tensor& logits, const Tensor& targets, Tensor& lse) {
  TRIDENT_PROFILE_SCOPE("cross_entropy_forward");
  const VocabDims d = vocab_dims(logits, targets, lse, "cross_entropy lse");
  float* l = lse.data<float>();
  double loss = 0.0;
  int64_t counted = 0;
#pragma omp parallel for schedule(static) reduction(+ : loss, counted) if (detail::worth_parallel(logits.numel()))
  for (int64_t t = 0; t < d.tokens; ++t) {
    const float* row = d.logits + t * d.vocab;
    const double row_lse = row_logsumexp(row, d.vocab);
    l[t] = static_cast<float>(row_lse);
    if (d.targets[t] == kIgnoreIndex) continue;
    loss += row_lse - static_cast<double>(row[d.targets[t]]);
    ++counted;
  }
  return CrossEntropyResult{loss, counted};
}

void cross_entropy_backward(const Tensor& logits, const Tensor& targets, const Tensor& lse,
                            float grad_scale, Tensor& dlogits) {
  TRIDENT_PROFILE_SCOPE("cross_entropy_backward");
  const VocabDims d = vocab_dims(logits, targets, lse, "cross_entropy lse");
  detail::check_f32(dlogits, "cross_entropy dlogits");
  detail::check_numel(dlogits, logits.numel(), "cross_entropy dlogits");
  const float* l = lse.data<float>();
  float* dx = dlogits.data<float>();
#pragma omp parallel for schedule(static) if (detail::worth_parallel(logits.numel()))
  for (int64_t t = 0; t < d.tokens; ++t) {
    const float* row = d.logits + t * d.vocab;
    float* out = dx + t * d.vocab;
    if (d.targets[t] == kIgnoreIndex) {
      std::fill(out, out + d.vocab, 0.0f);
      continue;
    }
    row_softmax_gradient(row, l[t], grad_scale, d.vocab, out);
    out[d.targets[t]] -= grad_scale;
  }
}

void token_logprobs(const Tensor& logits, const Tensor& targets, Tensor& logprobs) {
  TRIDENT_PROFILE_SCOPE("token_logprobs");
  const VocabDims d = vocab_dims(logits, targets, logprobs, "token_logprobs output");
  float* out = logprobs.data<float>();
#pragma omp parallel for schedule(static) if (detail::worth_parallel(logits.numel()))
  for (int64_t t = 0; t < d.tokens; ++t) {
    if (d.targets[t] == kIgnoreIndex) {
      out[t] = 0.0f;
      continue;
    }
    const float* row = d.logits + t * d.vocab;
    out[t] =
        static_cast<float>(static_cast<double>(row[d.targets[t]]) - row_logsumexp(row, d.vocab));
  }
}

std::vector<TokenScore> token_scores(const Tensor& logits, const Tensor& targets) {
  TRIDENT_PROFILE_SCOPE("token_scores");
  const VocabDims d = checked_vocab(logits, targets);
  std::vector<TokenScore> scores(static_cast<size_t>(d.tokens));
#pragma omp parallel for schedule(static) if (detail::worth_parallel(logits.numel()))
  for (int64_t t = 0; t < d.tokens; ++t) {
    if (d.targets[t] == kIgnoreIndex) continue;
    const float* row = d.logits + t * d.vocab;
    const RowSoftmax stats = row_softmax_stats(row, d.vocab);
    scores[static_cast<size_t>(t)] = TokenScore{static_cast<double>(row[d.targets[t]]) - stats.lse,
                                                stats.lse - stats.mean_logit};
  }
  return scores;
}

void token_logprobs_backward(const Tensor& logits, const Tensor& targets,
                             const std::vector<double>& weights, Tensor& dlogits) {
  TRIDENT_PROFILE_SCOPE("token_logprobs_backward");
  const VocabDims d = checked_vocab(logits, targets);
  TRIDENT_CHECK(static_cast<int64_t>(weights.size()) == d.tokens,
                "token_logprobs_backward: ", weights.size(), " weights for ", d.tokens, " tokens");
  detail::check_f32(dlogits, "token_logprobs_backward dlogits");
  detail::check_numel(dlogits, logits.numel(), "token_logprobs_backward dlogits");
  float* out = dlogits.data<float>();
#pragma omp parallel for schedule(static) if (detail::worth_parallel(logits.numel()))
  for (int64_t t = 0; t < d.tokens; ++t) {
    float* g = out + t * d.vocab;
    const double w = weights[static_cast<size_t>(t)];
    if (d.targets[t] == kIgnoreIndex || w == 0.0) {
      std::fill(g, g + d.vocab, 0.0f);
      continue;
    }
    const float* row = d.logits + t * d.vocab;
    const double lse = row_softmax_stats(row, d.vocab).lse;
    for (int64_t v = 0; v < d.vocab; ++v) g[v] = static_cast<float>(-w * std::exp(row[v] - lse));
    g[d.targets[t]] += static_cast<float>(w);
  }
}

}  // namespace trident::ops::cpu
