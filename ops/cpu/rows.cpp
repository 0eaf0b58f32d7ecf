// Token rows gathered by index and summed back with their gate weights: the expert-parallel
// dispatch's send rows and its combine (parallel/ep/dispatch_layout.cpp).
#include "ops/cpu/rows.h"

#include <cstring>

#include "ops/cpu/detail.h"
#include "runtime/core/profiler.h"

namespace trident::ops::cpu {
namespace {

// A [rows, width] f32 matrix's row count, checking its width.
int64_t matrix_rows(const Tensor& t, int64_t width, const char* name) {
  detail::check_f32(t, name);
  TRIDENT_CHECK(t.dim() == 2 && t.size(1) == width, name, " must be [rows, ", width, "], got ",
                t.describe());
  return t.size(0);
}

// slot_row i32 [n·k]: each entry −1 or a row of `rows`; returns n.
int64_t checked_slots(const Tensor& slot_row, int64_t top_k, int64_t row_count) {
  detail::check_i32(slot_row, "combine slot_row");
  TRIDENT_CHECK(top_k > 0 && slot_row.numel() % top_k == 0, "combine slot_row ",
                slot_row.describe(), " is not whole tokens of ", top_k, " slots");
  const int32_t* slot = slot_row.data<int32_t>();
  for (int64_t s = 0; s < slot_row.numel(); ++s) {
    TRIDENT_CHECK(slot[s] >= -1 && slot[s] < row_count, "combine slot ", s, " names row ", slot[s],
                  " of ", row_count);
  }
  return slot_row.numel() / top_k;
}

}  // namespace

void gather_rows(const Tensor& x, const Tensor& index, Tensor& out) {
  TRIDENT_PROFILE_SCOPE("gather_rows");
  TRIDENT_CHECK(x.dim() == 2, "gather_rows x must be [rows, width], got ", x.describe());
  const int64_t width = x.size(1), source_rows = matrix_rows(x, width, "gather_rows x");
  detail::check_i32(index, "gather_rows index");
  const int64_t rows = matrix_rows(out, width, "gather_rows out");
  detail::check_numel(index, rows, "gather_rows index");
  const int32_t* idx = index.data<int32_t>();
  const float* src = x.data<float>();
  float* dst = out.data<float>();
  for (int64_t r = 0; r < rows; ++r) {
    TRIDENT_CHECK(idx[r] >= 0 && idx[r] < source_rows, "gather_rows index ", idx[r], " at ", r,
                  " outside [0, ", source_rows, ")");
    std::memcpy(dst + r * width, src + idx[r] * width, sizeof(float) * static_cast<size_t>(width));
  }
}

void combine_rows(const Tensor& rows, const Tensor& slot_row, int64_t top_k, const Tensor& weights,
                  int64_t first_token, Tensor& out) {
  TRIDENT_PROFILE_SCOPE("combine_rows");
  TRIDENT_CHECK(out.dim() == 2, "combine_rows out must be [tokens, width], got ", out.describe());
  const int64_t width = out.size(1), tokens_out = matrix_rows(out, width, "combine_rows out");
  const int64_t row_count = matrix_rows(rows, width, "combine_rows rows");
  const int64_t n = checked_slots(slot_row, top_k, row_count);
  TRIDENT_CHECK(first_token >= 0 && first_token + n <= tokens_out, "combine_rows: tokens [",
                first_token, ", ", first_token + n, ") outside ", out.describe());
  if (weights.defined()) {
    detail::check_f32(weights, "combine_rows weights");
    detail::check_numel(weights, tokens_out * top_k, "combine_rows weights");
  }
  const int32_t* slot = slot_row.data<int32_t>();
  const float* y = rows.data<float>();
  const float* w = weights.defined() ? weights.data<float>() : nullptr;
  float* o = out.data<float>();
  for (int64_t i = 0; i < n; ++i) {
    const int64_t t = first_token + i;
    float* dst = o + t * width;
    std::memset(dst, 0, sizeof(float) * static_cast<size_t>(width));
    for (int64_t j = 0; j < top_k; ++j) {
      const int64_t row = slot[i * top_k + j];
      if (row < 0) continue;
      const float* from = y + row * width;
      if (w == nullptr) {
        for (int64_t c = 0; c < width; ++c) dst[c] += from[c];
      } else {
        const float weight = w[t * top_k + j];
        for (int64_t c = 0; c < width; ++c) dst[c] += weight * from[c];
      }
    }
  }
}

void combine_rows_backward(const Tensor& dout, const Tensor& rows, const Tensor& weights,
                           const Tensor& slot_row, int64_t first_token, Tensor& d_rows,
                           Tensor& d_weights) {
  TRIDENT_PROFILE_SCOPE("combine_rows_backward");
  TRIDENT_CHECK(dout.dim() == 2, "combine_rows_backward dout must be [tokens, width], got ",
                dout.describe());
  const int64_t width = dout.size(1);
  const int64_t tokens = matrix_rows(dout, width, "combine_rows_backward dout");
  const int64_t row_count = matrix_rows(rows, width, "combine_rows_backward rows");
  TRIDENT_CHECK(matrix_rows(d_rows, width, "combine_rows_backward d_rows") == row_count,
                "combine_rows_backward d_rows ", d_rows.describe(), " vs rows ", rows.describe());
  detail::check_f32(weights, "combine_rows_backward weights");
  const int64_t top_k = weights.size(-1);
  detail::check_numel(weights, tokens * top_k, "combine_rows_backward weights");
  detail::check_f32(d_weights, "combine_rows_backward d_weights");
  detail::check_numel(d_weights, tokens * top_k, "combine_rows_backward d_weights");
  const int64_t n = checked_slots(slot_row, top_k, row_count);
  TRIDENT_CHECK(first_token >= 0 && first_token + n <= tokens, "combine_rows_backward: tokens [",
                first_token, ", ", first_token + n, ") outside ", dout.describe());
  const int32_t* slot_of = slot_row.data<int32_t>();
  const float* g = dout.data<float>();
  const float* y = rows.data<float>();
  const float* w = weights.data<float>();
  float* dr = d_rows.data<float>();
  float* dw = d_weights.data<float>();
  for (int64_t i = 0; i < n; ++i) {
    const int64_t t = first_token + i;
    const float* grow = g + t * width;
    for (int64_t j = 0; j < top_k; ++j) {
      const int64_t slot = t * top_k + j;
      const int64_t row = slot_of[i * top_k + j];
      if (row < 0) {
        dw[slot] = 0.0f;
        continue;
      }
      const float* yrow = y + row * width;
      double dot = 0.0;
      for (int64_t c = 0; c < width; ++c) dot += static_cast<double>(grow[c]) * yrow[c];
      dw[slot] = static_cast<float>(dot);
      float* drow = dr + row * width;
      for (int64_t c = 0; c < width; ++c) drow[c] = w[slot] * grow[c];
    }
  }
}

}  // namespace trident::ops::cpu
