#pragma once
// Added tokens (special tokens such as <｜begin▁of▁sentence｜> and the chat markers) are found
// in the raw text before any splitting: at each position the longest added token that starts
// there wins, scanning left to right, and the text between them is tokenized normally.
#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace trident::io {

struct AddedToken {
  std::string content;
  int32_t id = 0;
  bool special = false;
  bool lstrip = false;  // whitespace before the token is dropped
  bool rstrip = false;  // whitespace after the token is dropped
};

// A section of text: either one added token or text between them.
struct TextSection {
  std::string_view text;
  int32_t added_id = -1;  // −1: ordinary text
};

class AddedTokenMatcher {
 public:
  explicit AddedTokenMatcher(const std::vector<AddedToken>& tokens);

  // Splits `text` into sections (empty text sections are left out), applying lstrip/rstrip.
  void split(std::string_view text, std::vector<TextSection>& sections) const;
  bool empty() const { return nodes_.size() == 1; }

 private:
  struct Node {
    std::vector<std::pair<uint8_t, int32_t>> children;  // sorted by byte
    int32_t token = -1;                                 // index into tokens_, −1 if none
  };
  int32_t child(const Node& node, uint8_t byte) const;
  // Longest token starting at text[pos]; −1 if none. `length` receives its byte length.
  int32_t longest_at(std::string_view text, size_t pos, size_t& length) const;

  std::vector<AddedToken> tokens_;
  std::vector<Node> nodes_;
  std::array<bool, 256> starts_{};  // bytes some token starts with: a fast skip for the rest
};

// JavaScript's whitespace (String.prototype.trim), as the reference encoder strips it.
std::string_view trim_whitespace_start(std::string_view text);
std::string_view trim_whitespace_end(std::string_view text);

}  // namespace trident::io
