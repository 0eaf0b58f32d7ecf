#pragma once
// The model's input: `batch` sequences of seq_len + 1 tokens. Position i of a row is an input
// token for i < seq_len and the target of position i − 1 for i ≥ 1; loss_mask[i] says whether
// token i counts as a target (SFT masks the prompt; padding is masked everywhere).
#include <cstddef>
#include <cstdint>
#include <vector>

namespace trident::models {

struct TokenBatch {
  int64_t batch = 0;
  int64_t seq_len = 0;                // model inputs per row; each row stores seq_len + 1 tokens
  std::vector<int32_t> tokens;        // [batch, seq_len + 1]
  std::vector<uint8_t> loss_mask;     // [batch, seq_len + 1]; entry 0 of a row is never a target

  int32_t token(int64_t row, int64_t pos) const { return tokens[static_cast<size_t>(row * (seq_len + 1) + pos)]; }
  bool counts(int64_t row, int64_t pos) const { return loss_mask[static_cast<size_t>(row * (seq_len + 1) + pos)] != 0; }
};

}  // namespace trident::models
