#include "runtime/io/text_tokenizer.h"

#include "runtime/io/hf_tokenizer.h"
#include "runtime/io/tokenizer.h"

namespace trident::io {

namespace {

// The built-in byte tokenizer behind the common interface: documents end with EOS (0x03) and
// text holding the reserved control bytes cannot be encoded faithfully.
class ByteTextTokenizer : public TextTokenizer {
 public:
  using TextTokenizer::encode;
  void encode(std::string_view text, std::vector<int32_t>& out) override {
    for (char c : text) out.push_back(static_cast<unsigned char>(c));
  }
  std::string decode(std::span<const int32_t> ids) const override {
    return ByteTokenizer::decode(std::vector<int32_t>(ids.begin(), ids.end()));
  }
  int64_t vocab_size() const override { return ByteTokenizer::kVocabSize; }
  int32_t bos_id() const override { return ByteTokenizer::kBos; }
  int32_t eos_id() const override { return ByteTokenizer::kEos; }
  bool bos_starts_documents() const override { return false; }
  std::string text_problem(std::string_view text) const override {
    return ByteTokenizer::has_special_bytes(text)
               ? "it contains a NUL, STX or ETX byte, which the byte tokenizer reserves for PAD, "
                 "BOS and EOS"
               : std::string();
  }
  bool repairs_invalid_utf8() const override { return false; }
  int32_t added_token_id(std::string_view) const override { return -1; }
  std::string name() const override { return "byte"; }
};

}  // namespace

std::unique_ptr<TextTokenizer> open_tokenizer(const std::string& spec) {
  if (spec.empty() || spec == "byte") return std::make_unique<ByteTextTokenizer>();
  return std::make_unique<HfTokenizer>(spec);
}

void encode_prompt_response(TextTokenizer& tokenizer, std::string_view prompt,
                            std::string_view response, std::vector<int32_t>& tokens,
                            std::vector<uint8_t>& mask) {
  tokens.clear();
  if (tokenizer.bos_starts_documents()) tokens.push_back(tokenizer.bos_id());
  tokenizer.encode(prompt, tokens);
  mask.assign(tokens.size(), 0);
  tokenizer.encode(response, tokens);
  if (tokenizer.eos_id() >= 0) tokens.push_back(tokenizer.eos_id());
  mask.resize(tokens.size(), 1);
}

}  // namespace trident::io
