// Fuzz target: a Hugging Face tokenizer.json (`data.tokenizer`, `trident data --tokenizer`,
// `trident tokenize`): the vocabulary, merges, added tokens and pre-tokenizer regexes loaded
// and compiled, then a text encoded with it. An input is one length byte, that many bytes of
// text, then the tokenizer.json. What a loaded tokenizer promises: every id it produces is
// below its vocabulary size and decodes. (Not that decoding spells the text back: a Split step
// that removes its matches, or an added token that strips the spaces beside it, loses bytes
// on purpose.)
#include "fuzz/fuzz_util.h"
#include "runtime/io/hf_tokenizer.h"

using namespace trident;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static fuzz::MemoryFile file;
  fuzz::ByteReader reader(data, size);
  const std::string text = reader.text();
  const std::string json = reader.rest();
  const std::string& path = file.write(reinterpret_cast<const uint8_t*>(json.data()), json.size());
  fuzz::expect_clean([&] {
    io::HfTokenizer tokenizer(path);
    const std::vector<int32_t> ids = tokenizer.encode(text);
    for (const int32_t id : ids) {
      fuzz::require(id >= 0 && id < tokenizer.vocab_size(), "an id outside the vocabulary");
    }
    (void)tokenizer.decode(ids);
  });
  return 0;
}
