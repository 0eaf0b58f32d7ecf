#pragma once
// The model the expert-parallel model tests compare with one rank: the tiny model (or its
// DeepSeek-V2 form, tests/models/test_configs.h) with a larger init, so that gradients sit well
// above fp32 round-off everywhere, and the tolerance and seed they share.
#include <cstdint>

#include "runtime/config/trident.pb.h"
#include "tests/models/test_configs.h"

namespace trident::models::parallelize::testing {

inline constexpr double kTolerance = 1e-5;
inline constexpr uint64_t kSeed = 4242;

inline config::ModelConfig ep_test_model_config(bool v2 = false) {
  config::ModelConfig config =
      v2 ? models::testing::tiny_v2_config() : models::testing::tiny_config();
  config.set_initializer_range(0.1);
  return config;
}

}  // namespace trident::models::parallelize::testing
