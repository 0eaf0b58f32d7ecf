// Token permutation by expert (dispatch order) and the weighted combine back to tokens.
#include <cstring>

#include "ops/cpu/detail.h"
#include "ops/cpu/router.h"
#include "ops/cpu/vector_math.h"
#include "runtime/core/profiler.h"

namespace trident::ops::cpu {
namespace {

int64_t slots(const PermutePlan& plan) { return plan.tokens * plan.top_k; }

void check_plan_rows(const PermutePlan& plan, const Tensor& per_token, const Tensor& per_slot,
                     const char* name) {
  detail::check_f32(per_token, name);
  detail::check_f32(per_slot, name);
  TRIDENT_CHECK(detail::rows(per_token) == plan.tokens && detail::rows(per_slot) == slots(plan) &&
                    detail::cols(per_token) == detail::cols(per_slot),
                name, ": token rows ", per_token.describe(), " and expert rows ",
                per_slot.describe(), " do not match a plan of ", plan.tokens, " tokens × ",
                plan.top_k, " slots");
}

// Tokens [begin, end): out[t] (+)= Σ_j weight(t, j) · rows[slot_to_row[t·top_k + j]], the slots
// added in order j = 0, 1, … (weight 1 when `weights` is null). The combine and the gradient of
// the permutation.
TRIDENT_AVX2_CLONE void gather_sum_rows(const float* rows, const int32_t* slot_to_row,
                                        const float* weights, int64_t top_k, int64_t dim,
                                        bool accumulate, float* out, int64_t begin, int64_t end) {
  for (int64_t t = begin; t < end; ++t) {
    float* row = out + t * dim;
    if (!accumulate) std::memset(row, 0, sizeof(float) * static_cast<size_t>(dim));
    for (int64_t j = 0; j < top_k; ++j) {
      const int64_t slot = t * top_k + j;
      const float* from = rows + static_cast<int64_t>(slot_to_row[slot]) * dim;
      if (weights == nullptr) {
#pragma omp simd
        for (int64_t c = 0; c < dim; ++c) row[c] += from[c];
      } else {
        const float weight = weights[slot];
#pragma omp simd
        for (int64_t c = 0; c < dim; ++c) row[c] += weight * from[c];
      }
    }
  }
}

// Tokens [begin, end) of the combine's backward: each slot's weight gradient <dout[t], y[row]>
// and its row gradient weight · dout[t].
TRIDENT_AVX2_CLONE void unpermute_backward_tokens(const float* dout, const float* y,
                                                  const float* weights, const int32_t* slot_to_row,
                                                  int64_t top_k, int64_t dim, float* dy,
                                                  float* dweights, int64_t begin, int64_t end) {
  for (int64_t t = begin; t < end; ++t) {
    const float* grow = dout + t * dim;
    for (int64_t j = 0; j < top_k; ++j) {
      const int64_t slot = t * top_k + j;
      const int64_t row = slot_to_row[slot];
      float* drow = dy + row * dim;
      dweights[slot] = static_cast<float>(detail::dot_f64(grow, y + row * dim, dim));
      const float weight = weights[slot];
#pragma omp simd
      for (int64_t c = 0; c < dim; ++c) drow[c] = weight * grow[c];
    }
  }
}

}  // namespace

std::vector<int64_t> count_per_expert(const Tensor& indices, int64_t experts) {
  detail::check_i32(indices, "expert indices");
  TRIDENT_CHECK(experts > 0, "counting experts needs experts > 0");
  const int64_t n = indices.numel();
  const int32_t* idx = indices.data<int32_t>();
  std::vector<int64_t> counts(static_cast<size_t>(experts), 0);
  for (int64_t i = 0; i < n; ++i) {
    TRIDENT_CHECK(idx[i] >= 0 && idx[i] < experts, "expert index ", idx[i], " at slot ", i,
                  " outside [0, ", experts, ")");
    ++counts[static_cast<size_t>(idx[i])];
  }
  return counts;
}

PermutePlan make_permute_plan(const Tensor& indices, int64_t experts) {
  TRIDENT_PROFILE_SCOPE("make_permute_plan");
  detail::check_i32(indices, "permute indices");
  TRIDENT_CHECK(experts > 0, "permute plan needs experts > 0");
  PermutePlan plan;
  plan.tokens = indices.dim() == 0 ? 1 : indices.size(0);
  plan.top_k = plan.tokens == 0 ? (indices.dim() >= 2 ? indices.size(-1) : 0)
                                : indices.numel() / plan.tokens;
  const int64_t n = indices.numel();
  const int32_t* idx = indices.data<int32_t>();
  plan.tokens_per_expert = count_per_expert(indices, experts);
  std::vector<int64_t> next(static_cast<size_t>(experts), 0);
  for (int64_t e = 1; e < experts; ++e) {
    next[static_cast<size_t>(e)] =
        next[static_cast<size_t>(e - 1)] + plan.tokens_per_expert[static_cast<size_t>(e - 1)];
  }
  plan.slot_to_row = Tensor::empty({n}, DType::I32, indices.device());
  plan.row_to_token = Tensor::empty({n}, DType::I32, indices.device());
  int32_t* slot_to_row = plan.slot_to_row.data<int32_t>();
  int32_t* row_to_token = plan.row_to_token.data<int32_t>();
  // Walking slots in token order keeps every expert's rows in token order (stable).
  for (int64_t i = 0; i < n; ++i) {
    const int64_t row = next[static_cast<size_t>(idx[i])]++;
    slot_to_row[i] = static_cast<int32_t>(row);
    row_to_token[row] = static_cast<int32_t>(plan.top_k == 0 ? 0 : i / plan.top_k);
  }
  return plan;
}

void permute_forward(const PermutePlan& plan, const Tensor& x, Tensor& out) {
  TRIDENT_PROFILE_SCOPE("permute_forward");
  check_plan_rows(plan, x, out, "permute_forward");
  const int64_t dim = detail::cols(x);
  const float* src = x.data<float>();
  float* dst = out.data<float>();
  const int64_t rows = slots(plan);
  const int32_t* row_to_token = plan.row_to_token.data<int32_t>();
#pragma omp parallel for schedule(static) if (detail::worth_parallel(rows * dim))
  for (int64_t row = 0; row < rows; ++row) {
    std::memcpy(dst + row * dim, src + static_cast<int64_t>(row_to_token[row]) * dim,
                sizeof(float) * static_cast<size_t>(dim));
  }
}

void permute_backward(const PermutePlan& plan, const Tensor& dout, Tensor& dx, bool accumulate) {
  TRIDENT_PROFILE_SCOPE("permute_backward");
  check_plan_rows(plan, dx, dout, "permute_backward");
  const int64_t dim = detail::cols(dx);
  const float* src = dout.data<float>();
  float* dst = dx.data<float>();
  const int32_t* slot_to_row = plan.slot_to_row.data<int32_t>();
  detail::for_ranges(plan.tokens, plan.tokens * plan.top_k * dim, [&](int64_t begin, int64_t end) {
    gather_sum_rows(src, slot_to_row, nullptr, plan.top_k, dim, accumulate, dst, begin, end);
  });
}

void unpermute_forward(const PermutePlan& plan, const Tensor& y, const Tensor& weights,
                       Tensor& out) {
  TRIDENT_PROFILE_SCOPE("unpermute_forward");
  check_plan_rows(plan, out, y, "unpermute_forward");
  detail::check_f32(weights, "unpermute weights");
  detail::check_numel(weights, slots(plan), "unpermute weights");
  const int64_t dim = detail::cols(out);
  const float* src = y.data<float>();
  const float* w = weights.data<float>();
  float* dst = out.data<float>();
  const int32_t* slot_to_row = plan.slot_to_row.data<int32_t>();
  detail::for_ranges(plan.tokens, plan.tokens * plan.top_k * dim, [&](int64_t begin, int64_t end) {
    gather_sum_rows(src, slot_to_row, w, plan.top_k, dim, false, dst, begin, end);
  });
}

void unpermute_backward(const PermutePlan& plan, const Tensor& dout, const Tensor& y,
                        const Tensor& weights, Tensor& dy, Tensor& dweights) {
  TRIDENT_PROFILE_SCOPE("unpermute_backward");
  check_plan_rows(plan, dout, y, "unpermute_backward");
  check_plan_rows(plan, dout, dy, "unpermute_backward");
  detail::check_f32(weights, "unpermute weights");
  detail::check_f32(dweights, "unpermute dweights");
  detail::check_numel(weights, slots(plan), "unpermute weights");
  detail::check_numel(dweights, slots(plan), "unpermute dweights");
  const int64_t dim = detail::cols(dout);
  const float* g = dout.data<float>();
  const float* src = y.data<float>();
  const float* w = weights.data<float>();
  float* dst = dy.data<float>();
  float* dw = dweights.data<float>();
  const int32_t* slot_to_row = plan.slot_to_row.data<int32_t>();
  detail::for_ranges(plan.tokens, plan.tokens * plan.top_k * dim, [&](int64_t begin, int64_t end) {
    unpermute_backward_tokens(g, src, w, slot_to_row, plan.top_k, dim, dst, dw, begin, end);
  });
}

}  // namespace trident::ops::cpu
