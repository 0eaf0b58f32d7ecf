#include "runtime/io/tokenizer.h"

#include "runtime/core/error.h"

namespace trident::io {

std::vector<int32_t> ByteTokenizer::encode(std::string_view text) {
  std::vector<int32_t> ids(text.size());
  for (size_t i = 0; i < text.size(); ++i) ids[i] = static_cast<unsigned char>(text[i]);
  return ids;
}

std::vector<int32_t> ByteTokenizer::encode_document(std::string_view text, bool add_bos,
                                                    bool add_eos) {
  std::vector<int32_t> ids;
  ids.reserve(text.size() + 2);
  if (add_bos) ids.push_back(kBos);
  for (char ch : text) ids.push_back(static_cast<unsigned char>(ch));
  if (add_eos) ids.push_back(kEos);
  return ids;
}

std::string ByteTokenizer::decode(const std::vector<int32_t>& ids) {
  std::string text(ids.size(), '\0');
  for (size_t i = 0; i < ids.size(); ++i) {
    TRIDENT_USER_CHECK(ids[i] >= 0 && ids[i] < kVocabSize, "byte tokenizer: id ", ids[i],
                       " at position ", i, " is not a byte (valid ids are 0..255)");
    text[i] = static_cast<char>(static_cast<unsigned char>(ids[i]));
  }
  return text;
}

bool ByteTokenizer::has_special_bytes(std::string_view text) {
  for (char ch : text) {
    const int32_t id = static_cast<unsigned char>(ch);
    if (id == kPad || id == kBos || id == kEos) return true;
  }
  return false;
}

}  // namespace trident::io
