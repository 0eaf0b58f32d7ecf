#pragma once
// The flags every training command shares: --config NAME|PATH and repeated --set k=v.
#include <string>
#include <vector>

#include "launch/cli.h"
#include "runtime/config/config.h"

namespace trident::launch {

struct ConfigFlags {
  std::string config = "tiny";
  std::vector<std::string> overrides;

  void add_to(ArgParser& parser) {
    parser.add_string(
        "--config", &config,
        "preset name (a file of configs/: tiny, small, medium, ...) or textproto path");
    parser.add_repeated("--set", &overrides, "override a field: --set train.steps=100 (repeatable)");
  }
  // Loads the preset, applies the overrides and validates for `world_size` ranks.
  config::TridentConfig load(int world_size) const {
    config::TridentConfig loaded = config::load_config(config::resolve_config_path(config));
    config::apply_overrides(loaded, overrides);
    config::validate(loaded, world_size);
    return loaded;
  }
};

}  // namespace trident::launch
