#pragma once
// What `trident data`, `trident tokenize` and the chat template need from a tokenizer, whether
// it is the built-in byte tokenizer ("byte") or a Hugging Face tokenizer.json.
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace trident::io {

class TextTokenizer {
 public:
  virtual ~TextTokenizer() = default;
  // Appends the ids of `text` (no BOS/EOS; special-token text is recognised as such).
  virtual void encode(std::string_view text, std::vector<int32_t>& out) = 0;
  std::vector<int32_t> encode(std::string_view text) {
    std::vector<int32_t> ids;
    encode(text, ids);
    return ids;
  }
  // The bytes the ids spell (not necessarily valid UTF-8: a cut multi-byte character stays
  // cut). An id the tokenizer does not have is a UserError naming it and its position.
  virtual std::string decode(std::span<const int32_t> ids) const = 0;
  // One more than the largest id the tokenizer can produce.
  virtual int64_t vocab_size() const = 0;
  virtual int32_t bos_id() const = 0;  // −1: none
  virtual int32_t eos_id() const = 0;  // −1: none
  // Whether documents start with BOS (tokenizer_config.json's add_bos_token).
  virtual bool bos_starts_documents() const = 0;
  // Empty when the text can be encoded as it is, otherwise why not (e.g. it holds bytes the
  // byte tokenizer reserves for special tokens).
  virtual std::string text_problem(std::string_view text) const = 0;
  // Whether encode() replaces invalid UTF-8 with U+FFFD (it works on text, not bytes).
  virtual bool repairs_invalid_utf8() const = 0;
  // The id of the added token whose text is `content`, −1 if there is none.
  virtual int32_t added_token_id(std::string_view content) const = 0;
  // "byte" or the tokenizer.json path, for messages.
  virtual std::string name() const = 0;
};

// "byte" for the built-in byte tokenizer, otherwise the path of a tokenizer.json (a
// tokenizer_config.json beside it supplies the BOS and EOS tokens).
std::unique_ptr<TextTokenizer> open_tokenizer(const std::string& spec);

// One SFT document into `tokens` and `mask` (both replaced): BOS when the tokenizer starts
// documents with it, then the prompt (mask 0), then the response and EOS (mask 1), the layout
// `trident data --sft` writes and SFT mode trains on.
void encode_prompt_response(TextTokenizer& tokenizer, std::string_view prompt,
                            std::string_view response, std::vector<int32_t>& tokens,
                            std::vector<uint8_t>& mask);

}  // namespace trident::io
