#pragma once
// The built-in byte-level tokenizer: token id = byte value, vocabulary 256. UTF-8 text is
// encoded byte by byte, so any string round-trips exactly and no vocabulary file exists.
//
// Special tokens reuse ASCII control bytes instead of adding ids above 255, so that a model
// with vocab_size 256 can use the tokenizer and token files fit in uint16:
//   PAD = 0x00 (NUL), BOS = 0x02 (STX, start of text), EOS = 0x03 (ETX, end of text).
// encode() never adds them; encode_document() adds them on request. Text that itself holds
// these bytes encodes them as the same ids (they are rare in real text; `trident data`
// rejects input documents that contain them).
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace trident::io {

class ByteTokenizer {
 public:
  static constexpr int32_t kVocabSize = 256;
  static constexpr int32_t kPad = 0x00;
  static constexpr int32_t kBos = 0x02;
  static constexpr int32_t kEos = 0x03;

  static std::vector<int32_t> encode(std::string_view text);
  // Text followed (or preceded) by the special tokens asked for.
  static std::vector<int32_t> encode_document(std::string_view text, bool add_bos, bool add_eos);
  // Ids outside [0, 256) are a UserError naming the position (a model with a larger vocabulary
  // can emit them). Special ids decode to their control bytes.
  static std::string decode(const std::vector<int32_t>& ids);
  // True if the text holds a byte that collides with PAD, BOS or EOS.
  static bool has_special_bytes(std::string_view text);
};

}  // namespace trident::io
