#pragma once
// Linear warmup then cosine decay to min_lr (docs/model.md).
#include <cstdint>

namespace trident::train {

struct LrSchedule {
  double peak = 0.0;
  double min = 0.0;
  int64_t warmup_steps = 0;
  int64_t total_steps = 1;

  // Learning rate of 1-based step t.
  double at(int64_t step) const;
};

}  // namespace trident::train
