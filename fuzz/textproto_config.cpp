// Fuzz target: textproto configs (`--config FILE`, and the config every checkpoint stores).
// Parsed, validated for a fuzzed number of ranks, and when valid: printed and parsed back to
// the same config, and laid out by the parameter registry (counts must not overflow).
#include "fuzz/fuzz_util.h"
#include "models/deepseek_v3/registry.h"
#include "runtime/config/config.h"

using namespace trident;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const int world_size = size > 0 ? data[0] % 9 : 0;  // 0: checks that need no rank count
  const std::string text(reinterpret_cast<const char*>(data), size);
  fuzz::expect_clean([&] {
    const config::TridentConfig parsed = config::parse_config_text(text, "fuzz.textproto");
    config::validate(parsed, world_size);
    const std::string printed = config::to_text(parsed);
    const config::TridentConfig back = config::parse_config_text(printed, "round-trip");
    fuzz::require(config::to_text(back) == printed, "to_text → parse changed a valid config");
    const config::ModelConfig& m = parsed.model();
    // The registry of a valid model; the harness skips only models too large to lay out here.
    if (m.num_hidden_layers() * m.n_routed_experts() <= 4096) {
      const models::ParameterRegistry registry(m);
      fuzz::require(registry.counts().total > 0, "a valid model with no parameters");
    }
  });
  return 0;
}
