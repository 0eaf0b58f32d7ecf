#include "models/deepseek_v3/loss.h"

#include "ops/ops.h"
#include "runtime/core/error.h"

namespace trident::models {

void TargetCounts::add(const TargetCounts& other) {
  lm += other.lm;
  if (mtp.size() < other.mtp.size()) mtp.resize(other.mtp.size(), 0);
  for (size_t d = 0; d < other.mtp.size(); ++d) mtp[d] += other.mtp[d];
  sequences += other.sequences;
}

namespace {
int64_t counted(const TokenBatch& batch, int64_t distance) {
  int64_t total = 0;
  for (int64_t b = 0; b < batch.batch; ++b) {
    for (int64_t s = 0; s + distance <= batch.seq_len; ++s) total += batch.counts(b, s + distance);
  }
  return total;
}
}  // namespace

TargetCounts count_targets(const TokenBatch& batch, int64_t mtp_depth) {
  TRIDENT_CHECK(static_cast<int64_t>(batch.tokens.size()) == batch.batch * (batch.seq_len + 1) &&
                    batch.loss_mask.size() == batch.tokens.size(),
                "token batch holds ", batch.tokens.size(), " tokens for ", batch.batch, " rows of ",
                batch.seq_len + 1);
  TargetCounts counts;
  counts.lm = counted(batch, 1);
  for (int64_t d = 1; d <= mtp_depth; ++d) counts.mtp.push_back(counted(batch, d + 1));
  counts.sequences = batch.batch;
  return counts;
}

LossScales make_loss_scales(const TargetCounts& global, double mtp_weight, double balance_alpha) {
  LossScales scales;
  scales.lm_targets = global.lm;
  scales.mtp_targets = global.mtp;
  scales.sequences = global.sequences;
  scales.mtp_weight = mtp_weight;
  scales.balance_alpha = balance_alpha;
  return scales;
}

Tensor input_ids(const TokenBatch& batch, Device device) { return shifted_ids(batch, 0, device); }

Tensor shifted_ids(const TokenBatch& batch, int64_t shift, Device device) {
  const int64_t S = batch.seq_len;
  std::vector<int32_t> ids(static_cast<size_t>(batch.batch * S));
  for (int64_t b = 0; b < batch.batch; ++b) {
    for (int64_t s = 0; s < S; ++s) {
      ids[static_cast<size_t>(b * S + s)] = s + shift <= S ? batch.token(b, s + shift) : 0;
    }
  }
  return Tensor::from_ints(ids, {batch.batch * S}).on(device);
}

Tensor shifted_targets(const TokenBatch& batch, int64_t distance, Device device) {
  const int64_t S = batch.seq_len;
  std::vector<int32_t> targets(static_cast<size_t>(batch.batch * S), ops::kIgnoreIndex);
  for (int64_t b = 0; b < batch.batch; ++b) {
    for (int64_t s = 0; s + distance <= S; ++s) {
      if (batch.counts(b, s + distance)) {
        targets[static_cast<size_t>(b * S + s)] = batch.token(b, s + distance);
      }
    }
  }
  return Tensor::from_ints(targets, {batch.batch * S}).on(device);
}

}  // namespace trident::models
