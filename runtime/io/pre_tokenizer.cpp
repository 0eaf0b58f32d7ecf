#include "runtime/io/pre_tokenizer.h"

#include "runtime/core/error.h"
#include "runtime/io/unicode_delta.h"
#include "runtime/io/utf8.h"

namespace trident::io {

namespace {

using nlohmann::json;

// GPT-2's split, which ByteLevel applies when use_regex is true.
constexpr const char* kByteLevelPattern =
    "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";

std::string quote_regex(const std::string& literal) {
  std::string out;
  for (char c : literal) {
    if (std::string_view("\\^$.|?*+()[]{}-/").find(c) != std::string_view::npos) out += '\\';
    out += c;
  }
  return out;
}

SplitBehavior parse_behavior(const json& config, const std::string& where) {
  const std::string behavior = config.value("behavior", std::string("Isolated"));
  if (behavior == "Isolated") return SplitBehavior::kIsolated;
  if (behavior == "Removed") return SplitBehavior::kRemoved;
  if (behavior == "MergedWithPrevious") return SplitBehavior::kMergedWithPrevious;
  if (behavior == "MergedWithNext") return SplitBehavior::kMergedWithNext;
  TRIDENT_USER_FAIL(where, ": split behavior \"", behavior,
                    "\" is not supported; valid: Isolated, Removed, MergedWithPrevious, "
                    "MergedWithNext");
}

size_t next_code_point(std::string_view text, size_t pos) {
  const size_t length = utf8_sequence_length(text.substr(pos));
  return pos + (length > 0 ? length : 1);
}

}  // namespace

PreTokenizer::PreTokenizer(const json& config, const std::string& origin) {
  if (!config.is_null()) add(config, origin + " pre_tokenizer");
}

void PreTokenizer::add(const json& config, const std::string& where) {
  TRIDENT_USER_CHECK(config.is_object() && config.contains("type") && config["type"].is_string(),
                     where, ": expected an object with a \"type\"");
  const std::string type = config["type"].get<std::string>();
  if (type == "Sequence") {
    const json& list = config.value("pretokenizers", json::array());
    TRIDENT_USER_CHECK(list.is_array(), where, ": \"pretokenizers\" must be a list");
    for (size_t i = 0; i < list.size(); ++i) add(list[i], where + "[" + std::to_string(i) + "]");
    return;
  }
  if (type == "Split") {
    TRIDENT_USER_CHECK(!config.value("invert", false), where,
                       ": \"invert\": true is not supported (only false)");
    const json& pattern = config.value("pattern", json::object());
    std::string regex;
    if (pattern.contains("Regex") && pattern["Regex"].is_string()) {
      regex = pattern["Regex"].get<std::string>();
    } else if (pattern.contains("String") && pattern["String"].is_string()) {
      regex = quote_regex(pattern["String"].get<std::string>());
    } else {
      TRIDENT_USER_FAIL(where, ": \"pattern\" must be {\"Regex\": ...} or {\"String\": ...}");
    }
    steps_.emplace_back(regex, where, parse_behavior(config, where));
    return;
  }
  if (type == "ByteLevel") {
    TRIDENT_USER_CHECK(!config.value("add_prefix_space", false), where,
                       ": ByteLevel \"add_prefix_space\": true is not supported (only false)");
    if (config.value("use_regex", true)) {
      steps_.emplace_back(kByteLevelPattern, where, SplitBehavior::kIsolated);
    }
    return;  // the byte mapping itself happens in the BPE, which works on raw bytes
  }
  TRIDENT_USER_FAIL(where, ": pre-tokenizer type \"", type,
                    "\" is not supported; valid: Sequence, Split, ByteLevel");
}

void split_piece(const SplitStep& step, std::string_view piece, std::vector<std::string_view>& out,
                 bool newer_unicode) {
  const Regex& regex = newer_unicode ? step.newer_unicode : step.regex;
  size_t gap_start = 0;  // start of the text not yet emitted
  size_t search = 0;
  bool pending_match = false;  // MergedWithNext: a match waits to be glued to what follows
  size_t pending_start = 0;
  RegexMatch m;
  const auto emit = [&](size_t begin, size_t end) {
    if (end > begin) out.push_back(piece.substr(begin, end - begin));
  };
  while (search <= piece.size() && regex.find(piece, search, m)) {
    // An empty match still cuts the text there (as the reference encoder's split does).
    switch (step.behavior) {
      case SplitBehavior::kIsolated:
        emit(gap_start, m.begin);
        emit(m.begin, m.end);
        break;
      case SplitBehavior::kRemoved:
        emit(gap_start, m.begin);
        break;
      case SplitBehavior::kMergedWithPrevious:
        emit(gap_start, m.end);
        break;
      case SplitBehavior::kMergedWithNext:
        emit(pending_match ? pending_start : gap_start, m.begin);
        pending_match = true;
        pending_start = m.begin;
        break;
    }
    gap_start = m.end;
    search = m.end > m.begin ? m.end : next_code_point(piece, m.end);
    if (search > piece.size()) break;
  }
  emit(pending_match ? pending_start : gap_start, piece.size());
}

void PreTokenizer::split(std::string_view text, std::vector<std::string_view>& pieces) {
  pieces.clear();
  if (text.empty()) return;
  pieces.push_back(text);
  // The extended patterns only where needed: piece by piece, once the text holds any such
  // character (the two forms split a subject without one identically).
  const bool any_newer = touches_unicode_delta(text);
  for (const SplitStep& step : steps_) {
    scratch_.clear();
    for (std::string_view piece : pieces) {
      split_piece(step, piece, scratch_, any_newer && touches_unicode_delta(piece));
    }
    pieces.swap(scratch_);
  }
}

}  // namespace trident::io
