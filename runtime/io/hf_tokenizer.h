#pragma once
// A Hugging Face tokenizer.json with a byte-level BPE model (GPT-2 style, as DeepSeek-V3's):
//   1. added tokens are matched in the raw text first (AddedTokenMatcher);
//   2. the text between them goes through the pre-tokenizer's splits (PreTokenizer);
//   3. each piece is byte-pair encoded from its UTF-8 bytes, merges by rank (BpeEncoder).
// Invalid UTF-8 in the input is first replaced with U+FFFD (utf8.h), as any tokenizer that
// takes strings sees it. Decoding maps ids back to their exact bytes.
//
// Not supported, each refused with a message naming the field: normalizers other than an
// empty Sequence, BPE with byte_fallback / dropout / subword prefixes or suffixes, a
// ByteLevel pre-tokenizer with add_prefix_space, single_word added tokens.
//
// encode() keeps a cache and scratch buffers: use one HfTokenizer per thread.
#include <cstdint>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "runtime/io/added_tokens.h"
#include "runtime/io/bpe.h"
#include "runtime/io/pre_tokenizer.h"
#include "runtime/io/text_tokenizer.h"

namespace trident::io {

class HfTokenizer : public TextTokenizer {
 public:
  // Reads `path` (tokenizer.json) and, when it exists, tokenizer_config.json in the same
  // directory (bos_token, eos_token). Every problem is a UserError naming the file and field.
  explicit HfTokenizer(const std::string& path);
  ~HfTokenizer() override;

  using TextTokenizer::encode;
  void encode(std::string_view text, std::vector<int32_t>& out) override;
  std::string decode(std::span<const int32_t> ids) const override;
  int64_t vocab_size() const override { return static_cast<int64_t>(bytes_of_id_.size()); }
  int32_t bos_id() const override { return bos_; }
  int32_t eos_id() const override { return eos_; }
  bool bos_starts_documents() const override { return add_bos_; }
  std::string text_problem(std::string_view) const override { return {}; }
  bool repairs_invalid_utf8() const override { return true; }
  int32_t added_token_id(std::string_view content) const override;
  std::string name() const override { return path_; }

  size_t added_tokens() const { return added_.size(); }
  size_t merges() const { return merges_; }

 private:
  void load_model(const nlohmann::json& model);
  void load_special_tokens();
  void encode_valid(std::string_view text, std::vector<int32_t>& out);
  int32_t id_of_text(const std::string& content) const;

  std::string path_;
  std::vector<std::string> bytes_of_id_;                  // what each id decodes to
  std::vector<bool> has_id_;                              // false: no token has this id (a hole)
  std::unordered_map<std::string, int32_t> id_of_bytes_;  // vocabulary by raw bytes
  std::vector<AddedToken> added_;
  std::unique_ptr<AddedTokenMatcher> matcher_;
  std::unique_ptr<PreTokenizer> pre_tokenizer_;
  std::unique_ptr<BpeEncoder> bpe_;
  bool ignore_merges_ = false;  // a piece that is itself a token is emitted whole
  size_t merges_ = 0;
  int32_t bos_ = -1, eos_ = -1;
  bool add_bos_ = false;
  // Scratch of encode().
  std::vector<TextSection> sections_;
  std::vector<std::string_view> pieces_;
};

}  // namespace trident::io
