// Token embedding lookup and its scatter-add gradient.
#include <algorithm>
#include <cstring>

#include "runtime/core/profiler.h"
#include "ops/cpu/detail.h"
#include "ops/cpu/elementwise.h"

namespace trident::ops::cpu {
namespace {

// The checked sizes, with the token ids they were read from.
struct EmbeddingDims {
  int64_t tokens = 0;
  int64_t vocab = 0;
  int64_t dim = 0;
  const int32_t* ids = nullptr;
};

EmbeddingDims embedding_dims(const Tensor& ids, const Tensor& table, const Tensor& rows) {
  detail::check_i32(ids, "embedding ids");
  TRIDENT_CHECK(table.dim() == 2, "embedding table must be [V, D], got ", table.describe());
  EmbeddingDims d{ids.numel(), table.size(0), table.size(1), ids.data<int32_t>()};
  detail::check_numel(rows, d.tokens * d.dim, "embedding rows");
  for (int64_t t = 0; t < d.tokens; ++t) {
    const int32_t id = d.ids[t];
    TRIDENT_CHECK(id >= 0 && id < d.vocab, "token id ", id, " at position ", t,
                  " is outside the vocabulary [0, ", d.vocab, ")");
  }
  return d;
}

}  // namespace

void embedding_forward(const Tensor& ids, const Tensor& table, Tensor& out) {
  TRIDENT_PROFILE_SCOPE("embedding_forward");
  detail::check_f32(out, "embedding out");
  detail::check_host(table, "embedding table");
  const EmbeddingDims d = embedding_dims(ids, table, out);
  float* y = out.data<float>();
  if (table.dtype() == DType::F32) {
    const float* w = table.data<float>();
#pragma omp parallel for schedule(static) if (detail::worth_parallel(d.tokens * d.dim))
    for (int64_t t = 0; t < d.tokens; ++t) {
      std::memcpy(y + t * d.dim, w + d.ids[t] * d.dim, sizeof(float) * static_cast<size_t>(d.dim));
    }
    return;
  }
  TRIDENT_CHECK(table.dtype() == DType::BF16, "embedding table must be f32 or bf16, got ",
                table.describe());
  const bf16* w = table.data<bf16>();
#pragma omp parallel for schedule(static) if (detail::worth_parallel(d.tokens * d.dim))
  for (int64_t t = 0; t < d.tokens; ++t) {
    for (int64_t c = 0; c < d.dim; ++c) y[t * d.dim + c] = bf16_to_float(w[d.ids[t] * d.dim + c]);
  }
}

void embedding_backward_weight(const Tensor& ids, const Tensor& dout, Tensor& dtable) {
  TRIDENT_PROFILE_SCOPE("embedding_backward_weight");
  detail::check_f32(dout, "embedding dout");
  detail::check_f32(dtable, "embedding dtable");
  const EmbeddingDims d = embedding_dims(ids, dtable, dout);
  const float* g = dout.data<float>();
  float* dw = dtable.data<float>();
  // Repeated ids never race: a column block is one thread's (detail::for_column_blocks).
  detail::for_column_blocks(d.dim, d.tokens * d.dim, [&](int64_t begin, int64_t end) {
    for (int64_t t = 0; t < d.tokens; ++t) {
      float* row = dw + d.ids[t] * d.dim;
      const float* src = g + t * d.dim;
      for (int64_t c = begin; c < end; ++c) row[c] += src[c];
    }
  });
}

}  // namespace trident::ops::cpu
