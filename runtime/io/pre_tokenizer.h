#pragma once
// The pre-tokenizer of a tokenizer.json: a sequence of regex splits that cut ordinary text into
// pieces, each of which is then byte-pair encoded on its own. Every split runs on each piece
// the previous one produced, with that piece as the whole subject (so a look-ahead never sees
// past the piece). Supported, as in tokenizer.json:
//   {"type": "Sequence", "pretokenizers": [...]}
//   {"type": "Split", "pattern": {"Regex": "..."} | {"String": "..."}, "invert": false,
//    "behavior": "Isolated" | "Removed" | "MergedWithPrevious" | "MergedWithNext"}
//   {"type": "ByteLevel", "add_prefix_space": false, "use_regex": true | false}
//     (use_regex: the GPT-2 split, Isolated; the byte mapping itself is the BPE's input)
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "runtime/io/regex.h"

namespace trident::io {

enum class SplitBehavior { kIsolated, kRemoved, kMergedWithPrevious, kMergedWithNext };

// Each pattern compiled twice: with PCRE2's own Unicode tables (fast), and with the categories
// extended to the reference encoder's newer Unicode (regex.h), used only for text that holds a
// character the two disagree on.
struct SplitStep {
  Regex regex;
  Regex newer_unicode;
  SplitBehavior behavior = SplitBehavior::kIsolated;
  SplitStep(const std::string& pattern, const std::string& origin, SplitBehavior split)
      : regex(pattern, origin, false), newer_unicode(pattern, origin, true), behavior(split) {}
};

class PreTokenizer {
 public:
  // `config` is tokenizer.json's "pre_tokenizer" (null: the whole text is one piece). `origin`
  // names the file in errors.
  PreTokenizer(const nlohmann::json& config, const std::string& origin);

  // Cuts `text` (valid UTF-8) into non-empty pieces, views into `text`.
  void split(std::string_view text, std::vector<std::string_view>& pieces);

  size_t steps() const { return steps_.size(); }

 private:
  void add(const nlohmann::json& config, const std::string& where);

  std::vector<SplitStep> steps_;
  std::vector<std::string_view> scratch_;
};

// Splits one piece by one step (exposed for tests).
void split_piece(const SplitStep& step, std::string_view piece, std::vector<std::string_view>& out);

}  // namespace trident::io
