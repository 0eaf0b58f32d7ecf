#include "runtime/io/utf8.h"

#include "runtime/core/error.h"

namespace trident::io {

namespace {

// The second byte's valid range depends on the lead byte (Unicode Table 3-7): this is what
// rules out overlong forms, surrogates and code points above U+10FFFF.
struct LeadRule {
  size_t length = 0;  // 0: not a lead byte
  uint8_t second_low = 0x80, second_high = 0xBF;
};

LeadRule lead_rule(uint8_t lead) {
  if (lead < 0x80) return {1};
  if (lead >= 0xC2 && lead <= 0xDF) return {2};
  if (lead == 0xE0) return {3, 0xA0, 0xBF};
  if (lead == 0xED) return {3, 0x80, 0x9F};
  if (lead >= 0xE1 && lead <= 0xEF) return {3};
  if (lead == 0xF0) return {4, 0x90, 0xBF};
  if (lead == 0xF4) return {4, 0x80, 0x8F};
  if (lead >= 0xF1 && lead <= 0xF3) return {4};
  return {};
}

// Bytes of the longest valid prefix of a sequence at text[0] (the "maximal subpart"), at least
// 1: an ill-formed sequence is replaced as a whole up to the byte that breaks it.
size_t maximal_subpart(std::string_view text) {
  const LeadRule rule = lead_rule(static_cast<uint8_t>(text[0]));
  if (rule.length <= 1) return 1;
  size_t i = 1;
  for (; i < rule.length && i < text.size(); ++i) {
    const uint8_t byte = static_cast<uint8_t>(text[i]);
    const uint8_t low = i == 1 ? rule.second_low : 0x80;
    const uint8_t high = i == 1 ? rule.second_high : 0xBF;
    if (byte < low || byte > high) break;
  }
  return i;
}

}  // namespace

size_t utf8_sequence_length(std::string_view text) {
  if (text.empty()) return 0;
  const LeadRule rule = lead_rule(static_cast<uint8_t>(text[0]));
  if (rule.length == 0 || rule.length > text.size()) return 0;
  return maximal_subpart(text) == rule.length ? rule.length : 0;
}

bool is_valid_utf8(std::string_view text) {
  size_t i = 0;
  while (i < text.size()) {
    // ASCII runs dominate most text: skip them eight bytes at a time.
    while (i + 8 <= text.size()) {
      uint64_t word;
      __builtin_memcpy(&word, text.data() + i, 8);
      if (word & 0x8080808080808080ull) break;
      i += 8;
    }
    if (i >= text.size()) break;
    const size_t length = utf8_sequence_length(text.substr(i));
    if (length == 0) return false;
    i += length;
  }
  return true;
}

Utf8Repair repair_utf8(std::string_view text) {
  Utf8Repair repair;
  if (is_valid_utf8(text)) {
    repair.text = std::string(text);
    return repair;
  }
  repair.text.reserve(text.size() + 16);
  size_t i = 0;
  while (i < text.size()) {
    const size_t length = utf8_sequence_length(text.substr(i));
    if (length > 0) {
      repair.text.append(text.data() + i, length);
      i += length;
      continue;
    }
    if (repair.first_bad_byte < 0) repair.first_bad_byte = static_cast<int64_t>(i);
    repair.text += "\xEF\xBF\xBD";
    ++repair.replacements;
    i += maximal_subpart(text.substr(i));
  }
  return repair;
}

void append_utf8(std::string& out, uint32_t cp) {
  TRIDENT_CHECK(cp <= 0x10FFFF && (cp < 0xD800 || cp > 0xDFFF), "not a Unicode scalar value: ", cp);
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xC0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xE0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
}

}  // namespace trident::io
