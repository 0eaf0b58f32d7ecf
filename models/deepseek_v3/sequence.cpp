#include "models/deepseek_v3/sequence.h"

#include <vector>

#include "runtime/core/error.h"

namespace trident::models {

SequenceLayout make_sequence_layout(int64_t batch, int64_t seq, const ops::RopeTable& rope) {
  TRIDENT_CHECK(seq <= rope.max_positions, "sequence length ", seq, " exceeds the RoPE table (",
                rope.max_positions, " positions)");
  std::vector<int32_t> positions(static_cast<size_t>(batch * seq));
  for (int64_t b = 0; b < batch; ++b) {
    for (int64_t s = 0; s < seq; ++s)
      positions[static_cast<size_t>(b * seq + s)] = static_cast<int32_t>(s);
  }
  SequenceLayout layout;
  layout.batch = batch;
  layout.seq = seq;
  // On the device of the RoPE table, where the rotations read them.
  const Device device = rope.cos.defined() ? rope.cos.device() : Device::CPU;
  layout.positions = Tensor::from_ints(positions, {batch * seq}).on(device);
  layout.rope = &rope;
  return layout;
}

}  // namespace trident::models
