#include "runtime/io/added_tokens.h"

#include <algorithm>

#include "runtime/io/utf8.h"

namespace trident::io {

AddedTokenMatcher::AddedTokenMatcher(const std::vector<AddedToken>& tokens)
    : tokens_(tokens), nodes_(1) {
  for (size_t t = 0; t < tokens_.size(); ++t) {
    const std::string& content = tokens_[t].content;
    if (content.empty()) continue;
    starts_[static_cast<uint8_t>(content[0])] = true;
    int32_t node = 0;
    for (char c : content) {
      const auto byte = static_cast<uint8_t>(c);
      int32_t next = child(nodes_[static_cast<size_t>(node)], byte);
      if (next < 0) {
        next = static_cast<int32_t>(nodes_.size());
        auto& children = nodes_[static_cast<size_t>(node)].children;
        children.insert(
            std::lower_bound(children.begin(), children.end(), std::make_pair(byte, int32_t{0})),
            {byte, next});
        nodes_.emplace_back();
      }
      node = next;
    }
    nodes_[static_cast<size_t>(node)].token = static_cast<int32_t>(t);
  }
}

int32_t AddedTokenMatcher::child(const Node& node, uint8_t byte) const {
  const auto it = std::lower_bound(node.children.begin(), node.children.end(),
                                   std::make_pair(byte, int32_t{0}));
  return it != node.children.end() && it->first == byte ? it->second : -1;
}

int32_t AddedTokenMatcher::longest_at(std::string_view text, size_t pos, size_t& length) const {
  int32_t node = 0, found = -1;
  for (size_t j = pos; j < text.size(); ++j) {
    node = child(nodes_[static_cast<size_t>(node)], static_cast<uint8_t>(text[j]));
    if (node < 0) break;
    if (nodes_[static_cast<size_t>(node)].token >= 0) {
      found = nodes_[static_cast<size_t>(node)].token;
      length = j + 1 - pos;
    }
  }
  return found;
}

void AddedTokenMatcher::split(std::string_view text, std::vector<TextSection>& sections) const {
  sections.clear();
  size_t start = 0;
  size_t pos = 0;
  while (pos < text.size()) {
    if (!starts_[static_cast<uint8_t>(text[pos])]) {
      ++pos;
      continue;
    }
    size_t length = 0;
    const int32_t token = longest_at(text, pos, length);
    if (token < 0) {
      ++pos;
      continue;
    }
    const AddedToken& added = tokens_[static_cast<size_t>(token)];
    std::string_view before = text.substr(start, pos - start);
    if (added.lstrip) before = trim_whitespace_end(before);
    if (!before.empty()) sections.push_back({before, -1});
    sections.push_back({text.substr(pos, length), added.id});
    pos += length;
    if (added.rstrip) {
      const std::string_view rest = trim_whitespace_start(text.substr(pos));
      pos = text.size() - rest.size();
    }
    start = pos;
  }
  if (start < text.size()) sections.push_back({text.substr(start), -1});
}

namespace {

bool is_js_whitespace(uint32_t cp) {
  return (cp >= 0x09 && cp <= 0x0D) || cp == 0x20 || cp == 0xA0 || cp == 0x1680 ||
         (cp >= 0x2000 && cp <= 0x200A) || cp == 0x2028 || cp == 0x2029 || cp == 0x202F ||
         cp == 0x205F || cp == 0x3000 || cp == 0xFEFF;
}

uint32_t decode_at(std::string_view text, size_t pos, size_t length) {
  const auto byte = [&](size_t i) { return static_cast<uint32_t>(static_cast<uint8_t>(text[i])); };
  switch (length) {
    case 1:
      return byte(pos);
    case 2:
      return ((byte(pos) & 0x1F) << 6) | (byte(pos + 1) & 0x3F);
    case 3:
      return ((byte(pos) & 0x0F) << 12) | ((byte(pos + 1) & 0x3F) << 6) | (byte(pos + 2) & 0x3F);
    default:
      return ((byte(pos) & 0x07) << 18) | ((byte(pos + 1) & 0x3F) << 12) |
             ((byte(pos + 2) & 0x3F) << 6) | (byte(pos + 3) & 0x3F);
  }
}

}  // namespace

std::string_view trim_whitespace_start(std::string_view text) {
  size_t pos = 0;
  while (pos < text.size()) {
    const size_t length = utf8_sequence_length(text.substr(pos));
    if (length == 0 || !is_js_whitespace(decode_at(text, pos, length))) break;
    pos += length;
  }
  return text.substr(pos);
}

std::string_view trim_whitespace_end(std::string_view text) {
  size_t end = text.size();
  while (end > 0) {
    size_t start = end - 1;
    while (start > 0 && (static_cast<uint8_t>(text[start]) & 0xC0) == 0x80) --start;
    const size_t length = utf8_sequence_length(text.substr(start, end - start));
    if (length != end - start || !is_js_whitespace(decode_at(text, start, length))) break;
    end = start;
  }
  return text.substr(0, end);
}

}  // namespace trident::io
