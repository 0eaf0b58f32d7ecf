// Fuzz target: a token file (`data.train_path`, `data.eval_path`): header, document offsets and
// loss mask validated at open, then batches drawn from it the way training does, in each of the
// sampler's modes, and the whole-file id check used when the header records no vocabulary.
#include "runtime/io/token_file.h"

#include "fuzz/fuzz_util.h"
#include "runtime/io/batch_sampler.h"

using namespace trident;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static fuzz::MemoryFile file;
  const std::string& path = file.write(data, size);
  fuzz::expect_clean([&] {
    auto tokens = std::make_shared<const io::TokenFile>(path);
    (void)tokens->first_id_at_least(256);
    for (uint64_t doc = 0; doc < std::min<uint64_t>(tokens->num_documents(), 64); ++doc) {
      fuzz::expect_clean([&] { (void)tokens->document_tokens(doc); });
    }
    for (const io::TokenFileMode mode : {io::TokenFileMode::RandomWindows,
                                         io::TokenFileMode::Packed, io::TokenFileMode::Documents}) {
      fuzz::expect_clean([&] {
        const io::TokenFileSampler sampler(tokens, io::BatchShape{2, 8, 1}, mode);
        for (int64_t step = 0; step < 3; ++step) (void)sampler.global_batch(step);
      });
    }
  });
  return 0;
}
