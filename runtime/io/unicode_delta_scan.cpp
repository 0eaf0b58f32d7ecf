// The fast test of unicode_delta.h: most text holds no character assigned after Unicode 14, and
// such text is split identically with or without the deltas.
#include <algorithm>
#include <vector>

#include "runtime/io/unicode_delta.h"
#include "runtime/io/utf8.h"

namespace trident::io {

namespace {

// Every delta's ranges, sorted and merged, for a binary search per non-ASCII code point.
std::vector<CodePointRange> merged_ranges() {
  std::vector<CodePointRange> all;
  for (const UnicodeDelta& delta : kUnicodeDeltas) {
    all.insert(all.end(), delta.added.begin(), delta.added.end());
    all.insert(all.end(), delta.removed.begin(), delta.removed.end());
  }
  std::sort(all.begin(), all.end(),
            [](const CodePointRange& a, const CodePointRange& b) { return a.first < b.first; });
  std::vector<CodePointRange> merged;
  for (const CodePointRange& r : all) {
    if (!merged.empty() && r.first <= merged.back().last + 1) {
      merged.back().last = std::max(merged.back().last, r.last);
    } else {
      merged.push_back(r);
    }
  }
  return merged;
}

uint32_t decode(std::string_view text, size_t pos, size_t length) {
  const auto byte = [&](size_t i) { return static_cast<uint32_t>(static_cast<uint8_t>(text[i])); };
  if (length == 2) return ((byte(pos) & 0x1F) << 6) | (byte(pos + 1) & 0x3F);
  if (length == 3) {
    return ((byte(pos) & 0x0F) << 12) | ((byte(pos + 1) & 0x3F) << 6) | (byte(pos + 2) & 0x3F);
  }
  return ((byte(pos) & 0x07) << 18) | ((byte(pos + 1) & 0x3F) << 12) |
         ((byte(pos + 2) & 0x3F) << 6) | (byte(pos + 3) & 0x3F);
}

}  // namespace

bool touches_unicode_delta(std::string_view text) {
  static const std::vector<CodePointRange> ranges = merged_ranges();
  if (ranges.empty()) return false;
  for (size_t i = 0; i < text.size();) {
    if (static_cast<uint8_t>(text[i]) < 0x80) {
      ++i;
      continue;
    }
    const size_t length = std::max<size_t>(utf8_sequence_length(text.substr(i)), 1);
    if (length >= 2) {
      const uint32_t cp = decode(text, i, length);
      const auto it = std::upper_bound(
          ranges.begin(), ranges.end(), cp,
          [](uint32_t value, const CodePointRange& r) { return value < r.first; });
      if (it != ranges.begin() && cp <= std::prev(it)->last) return true;
    }
    i += length;
  }
  return false;
}

}  // namespace trident::io
