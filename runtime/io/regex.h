#pragma once
// A compiled regular expression for the tokenizer's pre-tokenizer patterns, on PCRE2 (UTF-8,
// JIT-compiled). Hugging Face tokenizer.json patterns are written for Oniguruma and run by the
// JavaScript reference encoder; PCRE2 reads the same syntax (Unicode properties
// \p{L} \p{N} \p{P} \p{S} \p{M}, look-ahead, ordered alternation, greedy repeats) with one
// differences this class removes:
//   - \s and \S. Without PCRE2_UCP they would be ASCII only; with it they follow PCRE2's own
//     list (U+0085 and U+180E in, U+FEFF out). They are rewritten to JavaScript's list, the one
//     the reference encoder uses: \t \n \v \f \r, the Zs spaces, U+2028, U+2029, U+FEFF.
//   - \p{X} / \P{X} for a general category X, when `newer_unicode`: PCRE2 10.42 has Unicode 14
//     tables, the reference encoder a newer Unicode, so the characters assigned since
//     (unicode_delta.h) are added to (or taken from) the category. Classes that long are slower
//     to match, so callers use this form only on text that holds such characters.
// \d and \w stay ASCII, as in JavaScript.
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
  Regex(const std::string& pattern, const std::string& origin, bool newer_unicode = true);
  ~Regex();
  Regex(Regex&&) noexcept;
  Regex& operator=(Regex&&) noexcept;

  // The first match at or after `start` in `subject` (valid UTF-8, not checked again). The
  // subject is the whole string a look-ahead may see. Returns false when there is none.
  // Not thread-safe: each thread needs its own Regex (the match buffer lives inside).
  bool find(std::string_view subject, size_t start, RegexMatch& match) const;

  // The pattern after the rewrite above (what PCRE2 compiles).
  const std::string& compiled_pattern() const { return compiled_; }

 private:
  struct State;
  std::unique_ptr<State> state_;
  std::string compiled_;
  std::string origin_;
};

// The rewrite described above, exposed for tests. Throws UserError naming `origin` for what no
// single character class can express: \S inside a class, and inside a class a category whose
// newer meaning both adds and removes characters.
std::string javascript_pattern(const std::string& pattern, const std::string& origin,
                               bool newer_unicode = true);

}  // namespace trident::io
