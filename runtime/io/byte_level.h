#pragma once
// The byte-level alphabet of GPT-2-style BPE vocabularies (Hugging Face's ByteLevel): every
// byte is shown as one printable code point, so a token string in tokenizer.json spells the
// raw bytes of the token. Printable Latin-1 bytes stand for themselves; the other 68 bytes
// (controls, space, DEL, NBSP, soft hyphen) take U+0100 onwards in byte order.
#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace trident::io {

// Code point that represents `byte`.
uint32_t byte_level_code_point(uint8_t byte);

// The raw bytes a byte-level token string spells, or nothing when the string holds a code
// point outside the alphabet (such tokens are literal text, e.g. special tokens in the vocab).
std::optional<std::string> byte_level_decode(std::string_view token);

// The byte-level spelling of raw bytes (inverse of byte_level_decode).
std::string byte_level_encode(std::string_view bytes);

}  // namespace trident::io
