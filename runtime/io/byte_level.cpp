#include "runtime/io/byte_level.h"

#include "runtime/io/utf8.h"

namespace trident::io {

namespace {

bool stands_for_itself(uint32_t byte) {
  return (byte >= '!' && byte <= '~') || (byte >= 0xA1 && byte <= 0xAC) ||
         (byte >= 0xAE && byte <= 0xFF);
}

struct Alphabet {
  std::array<uint32_t, 256> code_point{};
  std::array<int16_t, 324> byte_of{};  // code point (< 256 + 68) -> byte, −1 if none
  Alphabet() {
    byte_of.fill(-1);
    uint32_t next = 256;
    for (uint32_t b = 0; b < 256; ++b) {
      code_point[b] = stands_for_itself(b) ? b : next++;
      byte_of[code_point[b]] = static_cast<int16_t>(b);
    }
  }
};

const Alphabet& alphabet() {
  static const Alphabet table;
  return table;
}

}  // namespace

uint32_t byte_level_code_point(uint8_t byte) { return alphabet().code_point[byte]; }

std::optional<std::string> byte_level_decode(std::string_view token) {
  std::string bytes;
  bytes.reserve(token.size());
  size_t i = 0;
  while (i < token.size()) {
    const size_t length = utf8_sequence_length(token.substr(i));
    if (length == 0 || length > 2) return std::nullopt;  // the alphabet ends below U+0800
    uint32_t cp = static_cast<uint8_t>(token[i]);
    if (length == 2) cp = ((cp & 0x1F) << 6) | (static_cast<uint8_t>(token[i + 1]) & 0x3F);
    if (cp >= alphabet().byte_of.size() || alphabet().byte_of[cp] < 0) return std::nullopt;
    bytes += static_cast<char>(alphabet().byte_of[cp]);
    i += length;
  }
  return bytes;
}

std::string byte_level_encode(std::string_view bytes) {
  std::string token;
  token.reserve(bytes.size() * 2);
  for (char c : bytes) append_utf8(token, byte_level_code_point(static_cast<uint8_t>(c)));
  return token;
}

}  // namespace trident::io
