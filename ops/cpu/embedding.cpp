// Token embedding lookup and its scatter-add gradient.
#include <algorithm>
#include <cstring>
#include <vector>

#include "ops/cpu/detail.h"
#include "ops/cpu/elementwise.h"
#include "runtime/core/profiler.h"

namespace trident::ops::cpu {
namespace {

// The checked sizes, with each token's row of the table (−1: another shard's id).
struct EmbeddingRows {
  int64_t tokens = 0;
  int64_t dim = 0;
  std::vector<int64_t> row;
};

EmbeddingRows embedding_rows(const Tensor& ids, const Tensor& table, const Tensor& rows,
                             int64_t shard_begin) {
  detail::check_i32(ids, "embedding ids");
  TRIDENT_CHECK(table.dim() == 2, "embedding table must be [V, D], got ", table.describe());
  const int64_t vocab = table.size(0);
  EmbeddingRows d{ids.numel(), table.size(1), {}};
  detail::check_numel(rows, d.tokens * d.dim, "embedding rows");
  const int32_t* id = ids.data<int32_t>();
  d.row.resize(static_cast<size_t>(d.tokens));
  for (int64_t t = 0; t < d.tokens; ++t) {
    if (shard_begin < 0) {
      TRIDENT_CHECK(id[t] >= 0 && id[t] < vocab, "token id ", id[t], " at position ", t,
                    " is outside the vocabulary [0, ", vocab, ")");
      d.row[static_cast<size_t>(t)] = id[t];
    } else {
      const int64_t local = static_cast<int64_t>(id[t]) - shard_begin;
      d.row[static_cast<size_t>(t)] = local >= 0 && local < vocab ? local : -1;
    }
  }
  return d;
}

}  // namespace

void embedding_forward(const Tensor& ids, const Tensor& table, Tensor& out, int64_t shard_begin) {
  TRIDENT_PROFILE_SCOPE("embedding_forward");
  detail::check_f32(out, "embedding out");
  detail::check_host(table, "embedding table");
  TRIDENT_CHECK(table.dtype() == DType::F32 || table.dtype() == DType::BF16,
                "embedding table must be f32 or bf16, got ", table.describe());
  const EmbeddingRows d = embedding_rows(ids, table, out, shard_begin);
  float* y = out.data<float>();
  const bool f32 = table.dtype() == DType::F32;
  const float* w32 = f32 ? table.data<float>() : nullptr;
  const bf16* w16 = f32 ? nullptr : table.data<bf16>();
#pragma omp parallel for schedule(static) if (detail::worth_parallel(d.tokens * d.dim))
  for (int64_t t = 0; t < d.tokens; ++t) {
    const int64_t row = d.row[static_cast<size_t>(t)];
    float* dst = y + t * d.dim;
    if (row < 0) {
      std::fill(dst, dst + d.dim, 0.0f);  // another shard's id
    } else if (f32) {
      std::memcpy(dst, w32 + row * d.dim, sizeof(float) * static_cast<size_t>(d.dim));
    } else {
      for (int64_t c = 0; c < d.dim; ++c) dst[c] = bf16_to_float(w16[row * d.dim + c]);
    }
  }
}

void embedding_backward_weight(const Tensor& ids, const Tensor& dout, Tensor& dtable,
                               int64_t shard_begin) {
  TRIDENT_PROFILE_SCOPE("embedding_backward_weight");
  detail::check_f32(dout, "embedding dout");
  detail::check_f32(dtable, "embedding dtable");
  const EmbeddingRows d = embedding_rows(ids, dtable, dout, shard_begin);
  const float* g = dout.data<float>();
  float* dw = dtable.data<float>();
  // Tokens in order (the single-rank sum order); repeated ids never race: a column block is one
  // thread's (detail::for_column_blocks).
  detail::for_column_blocks(d.dim, d.tokens * d.dim, [&](int64_t begin, int64_t end) {
    for (int64_t t = 0; t < d.tokens; ++t) {
      const int64_t r = d.row[static_cast<size_t>(t)];
      if (r < 0) continue;
      float* row = dw + r * d.dim;
      const float* src = g + t * d.dim;
      for (int64_t c = begin; c < end; ++c) row[c] += src[c];
    }
  });
}

}  // namespace trident::ops::cpu
