#pragma once
// The tiny model of docs/model.md with a larger init, so that its outputs are far from uniform
// and greedy decoding is not decided by round-off.
#include <algorithm>

#include "models/deepseek_v3/model.h"
#include "tests/models/test_configs.h"

namespace trident::train::grpo::testing {

inline config::ModelConfig grpo_tiny_config(double init = 0.1) {
  config::ModelConfig config = models::testing::tiny_config();
  config.set_initializer_range(init);
  return config;
}

// The part `slice` of a whole tensor (dim −1: all of it), flat: what a TP rank holding that
// slice has.
inline Tensor slice_of(const Tensor& whole, const models::ShardSlice& slice) {
  if (slice.dim < 0) return whole;
  const Shape& shape = whole.shape();
  int64_t outer = 1, inner = 1;
  for (int64_t d = 0; d < slice.dim; ++d) outer *= shape[static_cast<size_t>(d)];
  for (size_t d = static_cast<size_t>(slice.dim) + 1; d < shape.size(); ++d) inner *= shape[d];
  const int64_t size = shape[static_cast<size_t>(slice.dim)];
  Tensor out = Tensor::empty({outer * slice.extent * inner});
  const float* src = whole.data<float>();
  float* dst = out.data<float>();
  for (int64_t o = 0; o < outer; ++o) {
    std::copy_n(src + (o * size + slice.begin) * inner, slice.extent * inner,
                dst + o * slice.extent * inner);
  }
  return out;
}

}  // namespace trident::train::grpo::testing
