// Fuzz target: a Hugging Face config.json (`--init-hf DIR`, `trident convert`, `generate`,
// `eval`), imported into a model config and validated like one from a textproto.
#include "fuzz/fuzz_util.h"
#include "runtime/config/config.h"

using namespace trident;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static fuzz::MemoryFile file;
  const std::string& path = file.write(data, size);
  fuzz::expect_clean([&] {
    config::TridentConfig config = config::default_config();
    *config.mutable_model() = config::import_hf_config(path);
    config::validate(config, 0);
    // What a valid import exports is itself a config.json that imports to the same model.
    const std::string exported = config::export_hf_config_json(config.model());
    const std::string& again =
        file.write(reinterpret_cast<const uint8_t*>(exported.data()), exported.size());
    const config::ModelConfig back = config::import_hf_config(again);
    fuzz::require(back.SerializeAsString() == config.model().SerializeAsString(),
                  "export → import changed a valid model config");
  });
  return 0;
}
