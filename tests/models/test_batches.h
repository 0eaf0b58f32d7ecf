#pragma once
// Deterministic token batches for the model tests.
#include <cstdint>

#include "models/batch.h"
#include "runtime/core/rng.h"

namespace trident::models::testing {

// rows × (seq + 1) tokens in [0, vocab); every target counts except a few masked positions
// (when `mask_some`), so the masks are exercised.
inline TokenBatch random_batch(int64_t rows, int64_t seq, int64_t vocab, uint64_t seed,
                               bool mask_some = true) {
  const CounterRng rng(seed, stream_id("test-batch"));
  TokenBatch batch;
  batch.batch = rows;
  batch.seq_len = seq;
  for (int64_t i = 0; i < rows * (seq + 1); ++i) {
    batch.tokens.push_back(static_cast<int32_t>(rng.bits(static_cast<uint64_t>(i)) % vocab));
    const bool first = i % (seq + 1) == 0;
    const bool masked = mask_some && (i % 7 == 3);
    batch.loss_mask.push_back(first || masked ? 0 : 1);
  }
  return batch;
}

// Rows [begin, end) of a batch.
inline TokenBatch slice_rows(const TokenBatch& batch, int64_t begin, int64_t end) {
  TokenBatch out;
  out.batch = end - begin;
  out.seq_len = batch.seq_len;
  const auto width = static_cast<size_t>(batch.seq_len + 1);
  out.tokens.assign(batch.tokens.begin() + static_cast<std::ptrdiff_t>(begin * width),
                    batch.tokens.begin() + static_cast<std::ptrdiff_t>(end * width));
  out.loss_mask.assign(batch.loss_mask.begin() + static_cast<std::ptrdiff_t>(begin * width),
                       batch.loss_mask.begin() + static_cast<std::ptrdiff_t>(end * width));
  return out;
}

}  // namespace trident::models::testing
