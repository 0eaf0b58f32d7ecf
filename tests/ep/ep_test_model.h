#pragma once
// The model the expert-parallel model tests compare with one rank: the tiny model (or its
// DeepSeek-V2 form, tests/models/test_configs.h) with a larger init, so that gradients sit well
// above fp32 round-off everywhere, the tolerance and seed they share, and the engine options
// they compare the overlapped default with.
#include <cstdint>

#include "models/deepseek_v3/parallelize/expert_parallel_moe.h"
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

// The no-overlap baseline: every all-to-all waited for right after it is posted, the shared
// expert after the routed ones, and the expert weight gradients in backward_weight.
inline ExpertParallelOptions no_overlap_options(const config::ModelConfig& model, int64_t chunks) {
  ExpertParallelOptions options;
  options.dispatcher.experts = model.n_routed_experts();
  options.dispatcher.chunks = chunks;
  options.overlap = false;
  options.weight_grads_in_backward_input = false;
  return options;
}

}  // namespace trident::models::parallelize::testing
