#pragma once
// Shared by the checkpoint tests: the tiny model, stores for a given split, and optimizer
// moments that are a pure function of (parameter, global element index), so every layout
// knows the values any other layout saved.
#include <cstring>
#include <memory>
#include <vector>

#include "models/deepseek_v3/parameters.h"
#include "runtime/config/config.h"
#include "runtime/core/rng.h"
#include "runtime/io/checkpoint.h"

namespace trident::testing {

inline config::TridentConfig tiny_config() {
  return config::load_config(config::resolve_config_path("tiny"));
}

struct Split {
  int64_t tp_rank = 0, tp_size = 1, ep_rank = 0, ep_size = 1;
};

inline std::unique_ptr<models::ParameterStore> make_store(const models::ParameterRegistry& registry,
                                                          const Split& split, uint64_t seed) {
  models::ShardSelection selection;
  selection.tp_rank = split.tp_rank;
  selection.tp_size = split.tp_size;
  selection.ep_rank = split.ep_rank;
  selection.ep_size = split.ep_size;
  auto store = std::make_unique<models::ParameterStore>(registry, selection);
  store->initialize(seed);
  return store;
}

// Moment value of global element `index` of `name` (distinct per tensor, index and moment).
inline float moment_value(const std::string& name, int64_t index, int which) {
  const uint64_t h = (stream_id(name) + static_cast<uint64_t>(which) * 0x9E3779B97F4A7C15ull) ^
                     (static_cast<uint64_t>(index) * 0xD6E8FEB86659FD93ull);
  return static_cast<float>((h >> 40) % 100003) * 1e-5f - 0.5f;
}

// Expected moments of flat elements [begin, end) of `store` (zero for untrained parameters).
inline std::vector<float> expected_moments(const models::ParameterStore& store, int which,
                                           int64_t begin, int64_t end) {
  std::vector<float> out(static_cast<size_t>(end - begin), 0.0f);
  for (const models::Parameter& param : store.parameters()) {
    if (!param.spec->trained) continue;
    for (int64_t i = 0; i < param.value.numel(); ++i) {
      const int64_t flat = param.offset + i;
      if (flat < begin || flat >= end) continue;
      out[static_cast<size_t>(flat - begin)] =
          moment_value(param.spec->name, models::global_index(*param.spec, param.slice, i), which);
    }
  }
  return out;
}

inline bool same_bits(const float* a, const float* b, size_t n) {
  return std::memcmp(a, b, n * sizeof(float)) == 0;
}

}  // namespace trident::testing
