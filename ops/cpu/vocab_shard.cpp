// Cross-entropy over one tensor-parallel shard of the vocabulary: the per-row pieces the ranks
// combine with all-reduces (parallel/tp/vocab_parallel.cpp), each row in one pass.
#include "ops/cpu/vocab_shard.h"

#include <algorithm>
#include <cmath>

#include "ops/cpu/detail.h"
#include "ops/types.h"
#include "runtime/core/profiler.h"

namespace trident::ops::cpu {
namespace {

// The shard's column of a global id, or −1 when another shard holds it.
int64_t shard_column(int32_t id, int64_t shard_begin, int64_t shard_vocab) {
  const int64_t local = static_cast<int64_t>(id) - shard_begin;
  return local >= 0 && local < shard_vocab ? local : -1;
}

// logits [T, V_shard] f32 and their targets [T] i32; returns T.
int64_t shard_rows(const Tensor& logits, const Tensor& targets) {
  detail::check_f32(logits, "vocabulary shard logits");
  detail::check_i32(targets, "vocabulary shard targets");
  TRIDENT_CHECK(logits.dim() == 2, "vocabulary shard logits must be [T, V/tp], got ",
                logits.describe());
  detail::check_numel(targets, logits.size(0), "vocabulary shard targets");
  return logits.size(0);
}

}  // namespace

void shard_row_max(const Tensor& logits, Tensor& row_max) {
  TRIDENT_PROFILE_SCOPE("shard_row_max");
  detail::check_f32(logits, "shard_row_max logits");
  TRIDENT_CHECK(logits.dim() == 2, "shard_row_max logits must be [T, V/tp], got ",
                logits.describe());
  const int64_t T = logits.size(0), V = logits.size(1);
  detail::check_f32(row_max, "shard_row_max row_max");
  detail::check_numel(row_max, T, "shard_row_max row_max");
  const float* x = logits.data<float>();
  float* m = row_max.data<float>();
  for (int64_t t = 0; t < T; ++t) m[t] = *std::max_element(x + t * V, x + (t + 1) * V);
}

void shard_softmax_sums(const Tensor& logits, const Tensor& targets, int64_t shard_begin,
                        const Tensor& row_max, Tensor& sums) {
  TRIDENT_PROFILE_SCOPE("shard_softmax_sums");
  const int64_t T = shard_rows(logits, targets), V = logits.size(1);
  detail::check_f32(row_max, "shard_softmax_sums row_max");
  detail::check_numel(row_max, T, "shard_softmax_sums row_max");
  detail::check_f32(sums, "shard_softmax_sums sums");
  detail::check_numel(sums, 2 * T, "shard_softmax_sums sums");
  const float* x = logits.data<float>();
  const int32_t* target = targets.data<int32_t>();
  const float* m = row_max.data<float>();
  float* sum_exp = sums.data<float>();
  float* target_logit = sum_exp + T;
  for (int64_t t = 0; t < T; ++t) {
    const float* row = x + t * V;
    double sum = 0.0;
    for (int64_t v = 0; v < V; ++v) sum += std::exp(static_cast<double>(row[v] - m[t]));
    sum_exp[t] = static_cast<float>(sum);
    target_logit[t] = 0.0f;
    if (target[t] == kIgnoreIndex) continue;
    const int64_t col = shard_column(target[t], shard_begin, V);
    if (col >= 0) target_logit[t] = row[col];
  }
}

void shard_cross_entropy_backward(const Tensor& logits, const Tensor& targets, const Tensor& lse,
                                  int64_t shard_begin, float grad_scale, Tensor& dlogits) {
  TRIDENT_PROFILE_SCOPE("shard_cross_entropy_backward");
  const int64_t T = shard_rows(logits, targets), V = logits.size(1);
  detail::check_f32(lse, "shard_cross_entropy_backward lse");
  detail::check_numel(lse, T, "shard_cross_entropy_backward lse");
  detail::check_f32(dlogits, "shard_cross_entropy_backward dlogits");
  detail::check_numel(dlogits, T * V, "shard_cross_entropy_backward dlogits");
  const float* x = logits.data<float>();
  const int32_t* target = targets.data<int32_t>();
  const float* l = lse.data<float>();
  float* dx = dlogits.data<float>();
#pragma omp parallel for schedule(static) if (detail::worth_parallel(T * V))
  for (int64_t t = 0; t < T; ++t) {
    const float* row = x + t * V;
    float* out = dx + t * V;
    if (target[t] == kIgnoreIndex) {
      std::fill(out, out + V, 0.0f);
      continue;
    }
    for (int64_t v = 0; v < V; ++v) out[v] = std::exp(row[v] - l[t]) * grad_scale;
    const int64_t col = shard_column(target[t], shard_begin, V);
    if (col >= 0) out[col] -= grad_scale;
  }
}

std::vector<double> shard_softmax_stats(const Tensor& logits, const Tensor& targets,
                                        int64_t shard_begin, const Tensor& row_max) {
  TRIDENT_PROFILE_SCOPE("shard_softmax_stats");
  const int64_t n = shard_rows(logits, targets), V = logits.size(1);
  detail::check_f32(row_max, "shard_softmax_stats row_max");
  detail::check_numel(row_max, n, "shard_softmax_stats row_max");
  const float* x = logits.data<float>();
  const int32_t* target = targets.data<int32_t>();
  const float* m = row_max.data<float>();
  std::vector<double> parts(static_cast<size_t>(3 * n), 0.0);
  for (int64_t i = 0; i < n; ++i) {
    const float* l = x + i * V;
    double total = 0.0, weighted = 0.0;
    for (int64_t v = 0; v < V; ++v) {
      const double e = std::exp(l[v] - static_cast<double>(m[i]));
      total += e;
      weighted += e * l[v];
    }
    parts[static_cast<size_t>(3 * i)] = total;
    parts[static_cast<size_t>(3 * i + 1)] = weighted;
    const int64_t col = target[i] == kIgnoreIndex ? -1 : shard_column(target[i], shard_begin, V);
    if (col >= 0) parts[static_cast<size_t>(3 * i + 2)] = l[col];
  }
  return parts;
}

void shard_logprob_backward(const Tensor& logits, const Tensor& targets, int64_t shard_begin,
                            const std::vector<double>& lse, const std::vector<double>& weights,
                            Tensor& dlogits) {
  TRIDENT_PROFILE_SCOPE("shard_logprob_backward");
  const int64_t n = shard_rows(logits, targets), V = logits.size(1);
  TRIDENT_CHECK(static_cast<int64_t>(lse.size()) == n && static_cast<int64_t>(weights.size()) == n,
                "shard_logprob_backward: ", lse.size(), " lse and ", weights.size(),
                " weights for ", n, " rows");
  detail::check_f32(dlogits, "shard_logprob_backward dlogits");
  detail::check_numel(dlogits, n * V, "shard_logprob_backward dlogits");
  const float* x = logits.data<float>();
  const int32_t* target = targets.data<int32_t>();
  float* dx = dlogits.data<float>();
  for (int64_t i = 0; i < n; ++i) {
    float* g = dx + i * V;
    const double w = weights[static_cast<size_t>(i)];
    if (w == 0.0) {
      std::fill(g, g + V, 0.0f);
      continue;
    }
    const float* l = x + i * V;
    for (int64_t v = 0; v < V; ++v) {
      g[v] = static_cast<float>(-w * std::exp(l[v] - lse[static_cast<size_t>(i)]));
    }
    const int64_t col = target[i] == kIgnoreIndex ? -1 : shard_column(target[i], shard_begin, V);
    if (col >= 0) g[col] += static_cast<float>(w);
  }
}

}  // namespace trident::ops::cpu
