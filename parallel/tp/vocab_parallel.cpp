#include "parallel/tp/vocab_parallel.h"

#include <cmath>
#include <vector>

#include "runtime/core/error.h"

namespace trident::parallel::tp {

// The arithmetic runs as ops where the logits live (ops/ops.h, "vocabulary shards"); the host
// reads back only the per-row statistics, 3·T floats, for the loss it returns.

void vocab_parallel_embedding_local(const Tensor& ids, const Tensor& table_local,
                                    int64_t vocab_begin, Tensor& out) {
  ops::embedding_forward(ids, table_local, out, vocab_begin);
}

void vocab_parallel_embedding_backward_weight(const Tensor& ids, const Tensor& dout,
                                              int64_t vocab_begin, Tensor& dtable_local) {
  ops::embedding_backward_weight(ids, dout, dtable_local, vocab_begin);
}

ops::CrossEntropyResult vocab_parallel_cross_entropy_forward(const TpGroup& tp,
                                                             const Tensor& logits_local,
                                                             const Tensor& targets,
                                                             int64_t vocab_begin, Tensor& lse) {
  const int64_t T = logits_local.size(0);
  TRIDENT_CHECK(targets.numel() == T && lse.numel() == T, "cross_entropy: ", T, " rows of logits, ",
                targets.numel(), " targets, lse ", lse.numel());
  const Device device = logits_local.device();
  Tensor row_max = Tensor::empty({T}, DType::F32, device);
  ops::shard_row_max(logits_local, row_max);
  tp_all_reduce(tp, row_max, comm::ReduceOp::Max);

  // One all-reduce for both sums: [Σ exp(logit − M) per row | target logit per row].
  Tensor sums = Tensor::empty({2 * T}, DType::F32, device);
  ops::shard_softmax_sums(logits_local, targets, vocab_begin, row_max, sums);
  tp_all_reduce(tp, sums);

  // The loss is a host value: the rows' statistics come back once (a synchronisation on a GPU).
  const Tensor m = row_max.on(Device::CPU);
  const Tensor s = sums.on(Device::CPU);
  const Tensor target_ids = targets.on(Device::CPU);
  const float* max = m.data<float>();
  const float* sum_exp = s.data<float>();
  const float* target_logit = sum_exp + T;
  const int32_t* target = target_ids.data<int32_t>();
  Tensor host_lse = Tensor::empty({T});
  float* l = host_lse.data<float>();
  ops::CrossEntropyResult result;
  for (int64_t t = 0; t < T; ++t) {
    const double row_lse = static_cast<double>(max[t]) + std::log(static_cast<double>(sum_exp[t]));
    l[t] = static_cast<float>(row_lse);
    if (target[t] == ops::kIgnoreIndex) continue;
    result.loss_sum += row_lse - static_cast<double>(target_logit[t]);
    ++result.tokens;
  }
  lse.copy_from(host_lse);
  return result;
}

void vocab_parallel_cross_entropy_backward(const Tensor& logits_local, const Tensor& targets,
                                           const Tensor& lse, int64_t vocab_begin, float grad_scale,
                                           Tensor& dlogits_local) {
  ops::shard_cross_entropy_backward(logits_local, targets, lse, vocab_begin, grad_scale,
                                    dlogits_local);
}

}  // namespace trident::parallel::tp
