#pragma once
// The tiny model of docs/model.md with a larger init, so that its outputs are far from uniform
// and greedy decoding is not decided by round-off.
#include "models/deepseek_v3/model.h"
#include "tests/models/test_configs.h"

namespace trident::train::grpo::testing {

inline config::ModelConfig grpo_tiny_config(double init = 0.1) {
  config::ModelConfig config = models::testing::tiny_config();
  config.set_initializer_range(init);
  return config;
}

}  // namespace trident::train::grpo::testing
