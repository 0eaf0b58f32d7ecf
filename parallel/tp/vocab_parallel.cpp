#include "parallel/tp/vocab_parallel.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

#include "runtime/core/error.h"

namespace trident::parallel::tp {

namespace {

using ops::kIgnoreIndex;

void check_ids(const Tensor& ids, const char* what) {
  TRIDENT_CHECK(ids.dtype() == DType::I32, what, " must be I32, got ", ids.describe());
}

// The local column of a global vocabulary id, or −1 when another rank owns it.
int64_t local_column(int32_t id, int64_t vocab_begin, int64_t local_vocab) {
  const int64_t local = static_cast<int64_t>(id) - vocab_begin;
  return local >= 0 && local < local_vocab ? local : -1;
}

}  // namespace

void vocab_parallel_embedding_local(const Tensor& ids, const Tensor& table_local,
                                    int64_t vocab_begin, Tensor& out) {
  check_ids(ids, "embedding ids");
  const int64_t T = ids.numel(), rows = table_local.size(0), H = table_local.size(1);
  TRIDENT_CHECK(out.numel() == T * H, "embedding out ", out.describe(), " for ", T, " ids of ", H);
  TRIDENT_CHECK(table_local.dtype() == DType::F32 || table_local.dtype() == DType::BF16,
                "embedding table must be f32 or bf16, got ", table_local.describe());
  const int32_t* id = ids.data<int32_t>();
  float* y = out.data<float>();
  for (int64_t t = 0; t < T; ++t) {
    const int64_t row = local_column(id[t], vocab_begin, rows);
    if (row < 0) {
      std::fill(y + t * H, y + (t + 1) * H, 0.0f);
    } else if (table_local.dtype() == DType::F32) {
      std::memcpy(y + t * H, table_local.data<float>() + row * H,
                  sizeof(float) * static_cast<size_t>(H));
    } else {  // bf16 compute weights (train.param_dtype)
      const bf16* w = table_local.data<bf16>() + row * H;
      for (int64_t c = 0; c < H; ++c) y[t * H + c] = bf16_to_float(w[c]);
    }
  }
}

void vocab_parallel_embedding_backward_weight(const Tensor& ids, const Tensor& dout,
                                              int64_t vocab_begin, Tensor& dtable_local) {
  check_ids(ids, "embedding ids");
  const int64_t T = ids.numel(), rows = dtable_local.size(0), H = dtable_local.size(1);
  TRIDENT_CHECK(dout.numel() == T * H, "embedding dout ", dout.describe(), " for ", T, " ids");
  const int32_t* id = ids.data<int32_t>();
  const float* g = dout.data<float>();
  float* dw = dtable_local.data<float>();
  // Tokens in order, so the sum order matches the single-rank scatter.
  for (int64_t t = 0; t < T; ++t) {
    const int64_t row = local_column(id[t], vocab_begin, rows);
    if (row < 0) continue;
    for (int64_t c = 0; c < H; ++c) dw[row * H + c] += g[t * H + c];
  }
}

ops::CrossEntropyResult vocab_parallel_cross_entropy_forward(const TpGroup& tp,
                                                             const Tensor& logits_local,
                                                             const Tensor& targets,
                                                             int64_t vocab_begin, Tensor& lse) {
  check_ids(targets, "cross_entropy targets");
  const int64_t T = logits_local.size(0), Vl = logits_local.size(1);
  TRIDENT_CHECK(targets.numel() == T && lse.numel() == T, "cross_entropy: ", T, " rows of logits, ",
                targets.numel(), " targets, lse ", lse.numel());
  const float* x = logits_local.data<float>();
  const int32_t* target = targets.data<int32_t>();

  Tensor row_max = Tensor::empty({T});
  float* m = row_max.data<float>();
  for (int64_t t = 0; t < T; ++t) m[t] = *std::max_element(x + t * Vl, x + (t + 1) * Vl);
  tp_all_reduce(tp, row_max, comm::ReduceOp::Max);

  // One all-reduce for both sums: [Σ exp(logit − M) per row | target logit per row].
  Tensor sums = Tensor::zeros({2 * T});
  float* sum_exp = sums.data<float>();
  float* target_logit = sum_exp + T;
  for (int64_t t = 0; t < T; ++t) {
    const float* row = x + t * Vl;
    double sum = 0.0;
    for (int64_t v = 0; v < Vl; ++v) sum += std::exp(static_cast<double>(row[v] - m[t]));
    sum_exp[t] = static_cast<float>(sum);
    if (target[t] == kIgnoreIndex) continue;
    const int64_t col = local_column(target[t], vocab_begin, Vl);
    if (col >= 0) target_logit[t] = row[col];
  }
  tp_all_reduce(tp, sums);

  float* l = lse.data<float>();
  ops::CrossEntropyResult result;
  for (int64_t t = 0; t < T; ++t) {
    const double row_lse = static_cast<double>(m[t]) + std::log(static_cast<double>(sum_exp[t]));
    l[t] = static_cast<float>(row_lse);
    if (target[t] == kIgnoreIndex) continue;
    result.loss_sum += row_lse - static_cast<double>(target_logit[t]);
    ++result.tokens;
  }
  return result;
}

void vocab_parallel_cross_entropy_backward(const Tensor& logits_local, const Tensor& targets,
                                           const Tensor& lse, int64_t vocab_begin, float grad_scale,
                                           Tensor& dlogits_local) {
  check_ids(targets, "cross_entropy targets");
  const int64_t T = logits_local.size(0), Vl = logits_local.size(1);
  TRIDENT_CHECK(dlogits_local.numel() == T * Vl, "cross_entropy dlogits ",
                dlogits_local.describe());
  const float* x = logits_local.data<float>();
  const int32_t* target = targets.data<int32_t>();
  const float* l = lse.data<float>();
  float* dx = dlogits_local.data<float>();
  for (int64_t t = 0; t < T; ++t) {
    const float* row = x + t * Vl;
    float* out = dx + t * Vl;
    if (target[t] == kIgnoreIndex) {
      std::fill(out, out + Vl, 0.0f);
      continue;
    }
    for (int64_t v = 0; v < Vl; ++v) out[v] = std::exp(row[v] - l[t]) * grad_scale;
    const int64_t col = local_column(target[t], vocab_begin, Vl);
    if (col >= 0) out[col] -= grad_scale;
  }
}

}  // namespace trident::parallel::tp
