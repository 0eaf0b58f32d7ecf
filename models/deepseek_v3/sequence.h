#pragma once
// How the T = batch · seq rows of a hidden-state tensor are laid out: `batch` rows of `seq`
// tokens each (row-major, token t = b · seq + s), positions restarting at 0 in every row, and
// the RoPE table that covers them.
#include <cstdint>

#include "ops/ops.h"
#include "runtime/core/tensor.h"

namespace trident::models {

struct SequenceLayout {
  int64_t batch = 0;
  int64_t seq = 0;
  Tensor positions;                           // [batch · seq] I32
  const ops::RopeTable* rope = nullptr;       // covers positions < rope->max_positions

  int64_t tokens() const { return batch * seq; }
};

// positions[b · seq + s] = s
SequenceLayout make_sequence_layout(int64_t batch, int64_t seq, const ops::RopeTable& rope);

}  // namespace trident::models
