// DeepSeek-V3 router: sigmoid (or softmax) scores, bias-corrected group-limited top-k
// selection, normalised weights of the unbiased scores; and its backward.
#include "ops/cpu/router.h"

#include <algorithm>
#include <cmath>
#include <functional>
#include <limits>
#include <numeric>
#include <vector>

#include "ops/cpu/detail.h"
#include "ops/cpu/vector_math.h"
#include "runtime/core/profiler.h"

namespace trident::ops::cpu {
namespace {

void check_settings(const RouterSettings& r) {
  TRIDENT_USER_CHECK(r.experts > 0, "n_routed_experts must be > 0, got ", r.experts);
  TRIDENT_USER_CHECK(r.n_group > 0 && r.experts % r.n_group == 0, "n_group (", r.n_group,
                     ") must divide n_routed_experts (", r.experts, ")");
  TRIDENT_USER_CHECK(r.topk_group > 0 && r.topk_group <= r.n_group, "topk_group (", r.topk_group,
                     ") must be in [1, n_group = ", r.n_group, "]");
  TRIDENT_CHECK(r.group_top == 1 || r.group_top == 2, "group_top must be 1 or 2, got ",
                r.group_top);
  TRIDENT_USER_CHECK(r.top_k > 0 && r.top_k <= r.topk_group * (r.experts / r.n_group),
                     "num_experts_per_tok (", r.top_k,
                     ") must be in [1, topk_group × experts "
                     "per group = ",
                     r.topk_group * (r.experts / r.n_group), "]");
  if (r.max_nodes > 0 && r.experts_per_node > 0) {
    TRIDENT_USER_CHECK(r.experts % r.experts_per_node == 0, "experts per node (",
                       r.experts_per_node, ") must divide n_routed_experts (", r.experts, ")");
    TRIDENT_USER_CHECK(r.top_k <= r.max_nodes * r.experts_per_node,
                       "parallel.max_nodes_per_token (", r.max_nodes, ") × experts per node (",
                       r.experts_per_node, ") must be ≥ num_experts_per_tok (", r.top_k, ")");
  }
}

// Orders candidates by descending value, lower index first on ties.
struct Descending {
  const float* values;
  bool operator()(int64_t a, int64_t b) const {
    return values[a] > values[b] || (values[a] == values[b] && a < b);
  }
};

// Working space of one thread's rows, sized once per op call: routing a token allocates nothing.
struct RowScratch {
  explicit RowScratch(const RouterSettings& r)
      : biased(static_cast<size_t>(r.experts)),
        group_score(static_cast<size_t>(r.n_group)),
        experts(static_cast<size_t>(r.experts)),
        block_order(static_cast<size_t>(r.experts)),
        kept(static_cast<size_t>(r.experts)),
        member(static_cast<size_t>(std::max<int64_t>(r.experts_per_node, 0))) {}
  std::vector<float> biased;       // the token's biased scores
  std::vector<float> group_score;  // per group
  std::vector<int64_t> experts;    // candidate order for the top-k
  std::vector<int64_t> block_order;
  std::vector<char> kept;
  std::vector<float> node_score;
  std::vector<float> member;
};

// Sets the values of every block (`block` consecutive values, scored by `block_score`) outside
// the `keep` best to −inf: the node limit and the group limit both drop whole blocks of experts.
void keep_best_blocks(const std::vector<float>& block_score, int64_t keep, int64_t block,
                      float* values, RowScratch& scratch) {
  const int64_t blocks = static_cast<int64_t>(block_score.size());
  const auto order = scratch.block_order.begin();
  std::iota(order, order + blocks, 0);
  std::partial_sort(order, order + keep, order + blocks, Descending{block_score.data()});
  std::vector<char>& kept = scratch.kept;
  std::fill(kept.begin(), kept.begin() + blocks, 0);
  for (int64_t i = 0; i < keep; ++i) kept[static_cast<size_t>(order[i])] = 1;
  for (int64_t b = 0; b < blocks; ++b) {
    if (kept[static_cast<size_t>(b)]) continue;
    std::fill(values + b * block, values + (b + 1) * block,
              -std::numeric_limits<float>::infinity());
  }
}

// Node-limited routing: experts of every node outside the max_nodes best (sum of the node's top
// ceil(k / max_nodes) biased scores) become −inf, so the top-k reaches at most max_nodes nodes.
void limit_nodes(const RouterSettings& r, float* biased, RowScratch& scratch) {
  if (r.max_nodes <= 0 || r.experts_per_node <= 0) return;
  const int64_t nodes = r.experts / r.experts_per_node;
  if (nodes <= r.max_nodes) return;
  const int64_t per_node_best =
      std::min(r.experts_per_node, (r.top_k + r.max_nodes - 1) / r.max_nodes);
  std::vector<float>& node_score = scratch.node_score;
  node_score.resize(static_cast<size_t>(nodes));
  std::vector<float>& member = scratch.member;
  for (int64_t n = 0; n < nodes; ++n) {
    std::copy(biased + n * r.experts_per_node, biased + (n + 1) * r.experts_per_node,
              member.begin());
    std::partial_sort(member.begin(), member.begin() + per_node_best, member.end(),
                      std::greater<float>());
    float sum = 0.0f;
    for (int64_t i = 0; i < per_node_best; ++i) sum += member[static_cast<size_t>(i)];
    node_score[static_cast<size_t>(n)] = sum;
  }
  keep_best_blocks(node_score, r.max_nodes, r.experts_per_node, biased, scratch);
}

void score_row(const RouterSettings& r, const float* logits, float* scores) {
  if (r.sigmoid) {
    for (int64_t e = 0; e < r.experts; ++e) scores[e] = detail::sigmoid_f32(logits[e]);
    return;
  }
  const float max_logit = *std::max_element(logits, logits + r.experts);
  double sum = 0.0;
  for (int64_t e = 0; e < r.experts; ++e) {
    scores[e] = detail::exp_f32(logits[e] - max_logit);
    sum += scores[e];
  }
  for (int64_t e = 0; e < r.experts; ++e) scores[e] = static_cast<float>(scores[e] / sum);
}

// Selects the top-k experts of one token from its biased scores (modified in place: experts
// of dropped groups become −inf).
void select_row(const RouterSettings& r, float* biased, int32_t* chosen, RowScratch& scratch) {
  limit_nodes(r, biased, scratch);
  const int64_t group_size = r.experts / r.n_group;
  if (r.topk_group < r.n_group) {
    std::vector<float>& group_score = scratch.group_score;
    for (int64_t g = 0; g < r.n_group; ++g) {
      const float* member = biased + g * group_size;
      float best = -std::numeric_limits<float>::infinity();
      float second = -std::numeric_limits<float>::infinity();
      for (int64_t e = 0; e < group_size; ++e) {
        if (member[e] > best) {
          second = best;
          best = member[e];
        } else if (member[e] > second) {
          second = member[e];
        }
      }
      // A group cut by the node limit scores by its remaining expert (best + −inf would hide it).
      const bool has_second = second != -std::numeric_limits<float>::infinity();
      const bool sum_two = r.group_top >= 2 && group_size >= 2 && has_second;
      group_score[static_cast<size_t>(g)] = sum_two ? best + second : best;
    }
    keep_best_blocks(group_score, r.topk_group, group_size, biased, scratch);
  }
  std::vector<int64_t>& experts = scratch.experts;
  std::iota(experts.begin(), experts.end(), 0);
  std::partial_sort(experts.begin(), experts.begin() + r.top_k, experts.end(), Descending{biased});
  for (int64_t j = 0; j < r.top_k; ++j) chosen[j] = static_cast<int32_t>(experts[j]);
}

struct RouterDims {
  int64_t tokens = 0;
  int64_t experts = 0;
  int64_t k = 0;
};

// The sizes of `per_expert` [tokens, experts] (logits or scores), checked with the settings and
// the chosen experts `indices` [tokens, top_k] that forward writes and backward reads.
RouterDims router_dims(const RouterSettings& settings, const Tensor& per_expert, const char* name,
                       const Tensor& indices) {
  check_settings(settings);
  detail::check_f32(per_expert, name);
  detail::check_i32(indices, "router indices");
  TRIDENT_CHECK(detail::cols(per_expert) == settings.experts, name, " ", per_expert.describe(),
                " must have ", settings.experts, " columns");
  const RouterDims d{detail::rows(per_expert), settings.experts, settings.top_k};
  detail::check_numel(indices, d.tokens * d.k, "router indices");
  return d;
}

}  // namespace

void router_forward(const RouterSettings& settings, const Tensor& logits, const Tensor& bias,
                    Tensor& indices, Tensor& weights, Tensor& scores) {
  TRIDENT_PROFILE_SCOPE("router_forward");
  const RouterDims d = router_dims(settings, logits, "router logits", indices);
  detail::check_f32(bias, "router bias");
  detail::check_f32(weights, "router weights");
  detail::check_f32(scores, "router scores");
  detail::check_numel(bias, d.experts, "router bias");
  detail::check_numel(weights, d.tokens * d.k, "router weights");
  detail::check_numel(scores, d.tokens * d.experts, "router scores");
  const float* x = logits.data<float>();
  const float* b = bias.data<float>();
  int32_t* idx = indices.data<int32_t>();
  float* w = weights.data<float>();
  float* s = scores.data<float>();
#pragma omp parallel if (detail::worth_parallel(d.tokens * d.experts))
  {
    RowScratch scratch(settings);
    float* biased = scratch.biased.data();
#pragma omp for schedule(static)
    for (int64_t t = 0; t < d.tokens; ++t) {
      float* srow = s + t * d.experts;
      score_row(settings, x + t * d.experts, srow);
      for (int64_t e = 0; e < d.experts; ++e) biased[e] = srow[e] + b[e];
      int32_t* chosen = idx + t * d.k;
      select_row(settings, biased, chosen, scratch);
      double sum = 0.0;
      for (int64_t j = 0; j < d.k; ++j) sum += srow[chosen[j]];
      const double norm = settings.normalize ? 1.0 / (sum + 1e-20) : 1.0;
      for (int64_t j = 0; j < d.k; ++j) {
        w[t * d.k + j] = static_cast<float>(srow[chosen[j]] * norm * settings.scaling);
      }
    }
  }
}

// With S = Σ_sel s and c = scaling: w_j = c·s_j/(S + ε), so
// ds_m = c/(S + ε) · (dw_m − Σ_j dw_j·s_j/(S + ε)) for selected m (c·dw_m unnormalised);
// then sigmoid: dlogit_e = ds_e·s_e(1 − s_e); softmax: dlogit_e = s_e(ds_e − Σ_m ds_m s_m).
void router_backward(const RouterSettings& settings, const Tensor& dweights, const Tensor& indices,
                     const Tensor& scores, Tensor& dlogits) {
  TRIDENT_PROFILE_SCOPE("router_backward");
  const RouterDims d = router_dims(settings, scores, "router scores", indices);
  detail::check_f32(dweights, "router dweights");
  detail::check_f32(dlogits, "router dlogits");
  detail::check_numel(dweights, d.tokens * d.k, "router dweights");
  detail::check_numel(dlogits, d.tokens * d.experts, "router dlogits");
  const float* dw = dweights.data<float>();
  const int32_t* idx = indices.data<int32_t>();
  const float* s = scores.data<float>();
  float* dx = dlogits.data<float>();
#pragma omp parallel if (detail::worth_parallel(d.tokens * d.experts))
  {
    std::vector<double> dscore(static_cast<size_t>(d.experts));
#pragma omp for schedule(static)
    for (int64_t t = 0; t < d.tokens; ++t) {
      const float* srow = s + t * d.experts;
      const int32_t* chosen = idx + t * d.k;
      const float* grow = dw + t * d.k;
      std::fill(dscore.begin(), dscore.end(), 0.0);
      if (settings.normalize) {
        double sum = 0.0, weighted = 0.0;
        for (int64_t j = 0; j < d.k; ++j) {
          sum += srow[chosen[j]];
          weighted += static_cast<double>(grow[j]) * srow[chosen[j]];
        }
        const double denom = sum + 1e-20;
        for (int64_t j = 0; j < d.k; ++j) {
          dscore[static_cast<size_t>(chosen[j])] +=
              settings.scaling / denom * (grow[j] - weighted / denom);
        }
      } else {
        for (int64_t j = 0; j < d.k; ++j) {
          dscore[static_cast<size_t>(chosen[j])] += static_cast<double>(settings.scaling) * grow[j];
        }
      }
      float* out = dx + t * d.experts;
      if (settings.sigmoid) {
        for (int64_t e = 0; e < d.experts; ++e) {
          out[e] = static_cast<float>(dscore[static_cast<size_t>(e)] * srow[e] * (1.0 - srow[e]));
        }
      } else {
        double dot = 0.0;
        for (int64_t e = 0; e < d.experts; ++e) dot += dscore[static_cast<size_t>(e)] * srow[e];
        for (int64_t e = 0; e < d.experts; ++e) {
          out[e] = static_cast<float>(srow[e] * (dscore[static_cast<size_t>(e)] - dot));
        }
      }
    }
  }
}

}  // namespace trident::ops::cpu
