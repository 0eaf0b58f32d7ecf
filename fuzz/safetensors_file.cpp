// Fuzz target: a safetensors file (its 8-byte header length, the JSON header with dtypes,
// shapes and data offsets, and the data they point into), opened as `--init-hf` and
// `trident convert` open one, then every tensor viewed and loaded as fp32.
#include "fuzz/fuzz_util.h"
#include "runtime/io/safetensors.h"

using namespace trident;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static fuzz::MemoryFile file;
  const std::string& path = file.write(data, size);
  fuzz::expect_clean([&] {
    const io::SafetensorsFile st(path);
    for (const std::string& name : st.names()) {
      const io::StTensorInfo& info = st.info(name);
      fuzz::require(info.begin <= info.end && info.end <= size, "offsets outside the file");
      fuzz::expect_clean([&] { (void)st.view(name); });
      const Tensor loaded = st.load(name);
      fuzz::require(static_cast<uint64_t>(loaded.numel()) * io::st_dtype_size(info.dtype) ==
                        info.end - info.begin,
                    "a loaded tensor's size differs from its offsets");
    }
  });
  return 0;
}
