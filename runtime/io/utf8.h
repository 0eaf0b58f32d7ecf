#pragma once
// UTF-8 checks and repair. Text reaches the tokenizer as bytes; invalid sequences are replaced
// with U+FFFD the way the WHATWG decoder does it (one replacement per maximal subpart of an
// ill-formed sequence), which is what JavaScript's TextDecoder and Python's
// bytes.decode(errors="replace") produce, so ids match tokenizers that only ever see strings.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace trident::io {

// Length of the valid UTF-8 sequence starting at text[0], or 0 if it is ill-formed there.
size_t utf8_sequence_length(std::string_view text);

// True when the whole text is well-formed UTF-8 (no surrogates, no overlong forms, ≤ U+10FFFF).
bool is_valid_utf8(std::string_view text);

struct Utf8Repair {
  std::string text;             // the input with every ill-formed subpart replaced by U+FFFD
  int64_t replacements = 0;     // how many U+FFFD were inserted
  int64_t first_bad_byte = -1;  // offset of the first ill-formed byte, -1 if none
};
Utf8Repair repair_utf8(std::string_view text);

// Appends the UTF-8 encoding of a code point (≤ U+10FFFF, not a surrogate).
void append_utf8(std::string& out, uint32_t code_point);

}  // namespace trident::io
