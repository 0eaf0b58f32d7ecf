#pragma once
// A compiled regular expression for the tokenizer's pre-tokenizer patterns, on PCRE2 (UTF-8,
// JIT-compiled). Hugging Face tokenizer.json patterns are written for Oniguruma and run by the
// JavaScript reference encoder; PCRE2 understands the same syntax (Unicode properties
// \p{L} \p{N} \p{P} \p{S} \p{M}, look-ahead, possessive-free alternation) with one difference
// this class removes: \s and \S. Without PCRE2_UCP they would be ASCII only; with it they
// follow PCRE2's own list (U+0085 and U+180E in, U+FEFF out). They are rewritten to
// JavaScript's list, the one the reference encoder uses: \t \n \v \f \r, the Zs spaces,
// U+2028, U+2029 and U+FEFF. \d and \w stay ASCII, as in JavaScript.
#include <cstddef>
#include <memory>
#include <string>
#include <string_view>

namespace trident::io {

struct RegexMatch {
  size_t begin = 0;  // byte offsets into the subject
  size_t end = 0;
};

class Regex {
 public:
  // Throws UserError naming `origin` (e.g. "tokenizer.json pre_tokenizer 2") and the PCRE2
  // message with the offset when the pattern does not compile.
  Regex(const std::string& pattern, const std::string& origin);
  ~Regex();
  Regex(Regex&&) noexcept;
  Regex& operator=(Regex&&) noexcept;

  // The first match at or after `start` in `subject` (valid UTF-8, not checked again). The
  // subject is the whole string a look-ahead may see. Returns false when there is none.
  // Not thread-safe: each thread needs its own Regex (the match buffer lives inside).
  bool find(std::string_view subject, size_t start, RegexMatch& match) const;

  // The pattern after the \s / \S rewrite (what PCRE2 compiles).
  const std::string& compiled_pattern() const { return compiled_; }

 private:
  struct State;
  std::unique_ptr<State> state_;
  std::string compiled_;
  std::string origin_;
};

// The rewrite described above, exposed for tests: \s -> JavaScript's whitespace class.
// Throws UserError for \S inside a character class (no single-class equivalent).
std::string javascript_whitespace_pattern(const std::string& pattern, const std::string& origin);

}  // namespace trident::io
