#define PCRE2_CODE_UNIT_WIDTH 8
#include "runtime/io/regex.h"

#include <pcre2.h>

#include <cstdio>
#include <span>
#include <string_view>

#include "runtime/core/error.h"
#include "runtime/io/unicode_delta.h"

namespace trident::io {

namespace {

// JavaScript's \s: WhiteSpace (TAB, VT, FF, ZWNBSP, Zs) and LineTerminator (LF, CR, LS, PS).
// Listed rather than written as \p{Zs} so the set does not move with PCRE2's Unicode version.
constexpr const char* kJsSpaceItems =
    "\\t\\n\\x{0B}\\f\\r\\x{20}\\x{A0}\\x{1680}\\x{2000}-\\x{200A}\\x{2028}\\x{2029}\\x{202F}"
    "\\x{205F}\\x{3000}\\x{FEFF}";

std::string pcre2_message(int code) {
  PCRE2_UCHAR buffer[256];
  const int length = pcre2_get_error_message(code, buffer, sizeof(buffer));
  return length > 0 ? std::string(reinterpret_cast<const char*>(buffer), length)
                    : "PCRE2 error " + std::to_string(code);
}

// PCRE2's JIT stack starts at 32 KiB; long runs of one class (a megabyte of letters) can need
// more, so each regex gets its own larger stack instead of failing on such input.
constexpr size_t kJitStackMax = size_t{8} << 20;

}  // namespace

namespace {

std::string range_items(std::span<const CodePointRange> ranges) {
  std::string items;
  char buffer[40];
  for (const CodePointRange& r : ranges) {
    if (r.first == r.last) {
      std::snprintf(buffer, sizeof(buffer), "\\x{%X}", r.first);
    } else {
      std::snprintf(buffer, sizeof(buffer), "\\x{%X}-\\x{%X}", r.first, r.last);
    }
    items += buffer;
  }
  return items;
}

const UnicodeDelta* category_delta(std::string_view name) {
  for (const UnicodeDelta& delta : kUnicodeDeltas) {
    if (name == delta.category) return &delta;
  }
  return nullptr;
}

// \p{X} (or \P{X} when `negated`) with JavaScript's meaning of category X.
std::string category(std::string_view name, bool negated, bool in_class,
                     const std::string& origin) {
  const std::string plain = std::string(negated ? "\\P{" : "\\p{") + std::string(name) + "}";
  const UnicodeDelta* delta = category_delta(name);
  if (delta == nullptr) return plain;
  // What joins the category and what leaves it, from the negated side's point of view too.
  const auto joins = negated ? delta->removed : delta->added;
  const auto leaves = negated ? delta->added : delta->removed;
  if (in_class) {
    TRIDENT_USER_CHECK(leaves.empty(), origin, ": ", plain, " inside a character class cannot be "
                       "given its ", kUnicodeDeltaTarget, " meaning (it loses characters)");
    return plain + range_items(joins);
  }
  // One class where possible: PCRE2 scans for a class faster than for an alternation.
  if (leaves.empty()) return "[" + plain + range_items(joins) + "]";
  std::string out = "(?:(?![" + range_items(leaves) + "])" + plain;
  if (!joins.empty()) out += "|[" + range_items(joins) + "]";
  return out + ")";
}

}  // namespace

std::string javascript_pattern(const std::string& pattern, const std::string& origin,
                               bool newer_unicode) {
  std::string out;
  out.reserve(pattern.size() + 64);
  bool in_class = false;
  for (size_t i = 0; i < pattern.size(); ++i) {
    const char c = pattern[i];
    if (c == '\\' && i + 1 < pattern.size()) {
      const char next = pattern[++i];
      if (next == 's') {
        out += in_class ? std::string(kJsSpaceItems) : "[" + std::string(kJsSpaceItems) + "]";
      } else if (next == 'S') {
        TRIDENT_USER_CHECK(!in_class, origin, ": \\S inside a character class is not supported (",
                           pattern, ")");
        out += "[^" + std::string(kJsSpaceItems) + "]";
      } else if ((next == 'p' || next == 'P') && i + 1 < pattern.size()) {
        // \p{Name} or the one-letter \pL.
        std::string name;
        if (pattern[i + 1] == '{') {
          const size_t close = pattern.find('}', i + 2);
          TRIDENT_USER_CHECK(close != std::string::npos, origin, ": unclosed \\", next,
                             "{ in ", pattern);
          name = pattern.substr(i + 2, close - i - 2);
          i = close;
        } else {
          name = pattern.substr(++i, 1);
        }
        out += newer_unicode ? category(name, next == 'P', in_class, origin)
                             : std::string(next == 'P' ? "\\P{" : "\\p{") + name + "}";
      } else {
        out += c;
        out += next;
      }
      continue;
    }
    if (!in_class && c == '[') {
      in_class = true;
      out += c;
      // A ']' right after '[' or '[^' is a literal member, not the end of the class.
      if (i + 1 < pattern.size() && pattern[i + 1] == '^') out += pattern[++i];
      if (i + 1 < pattern.size() && pattern[i + 1] == ']') out += pattern[++i];
      continue;
    }
    if (in_class && c == ']') in_class = false;
    out += c;
  }
  return out;
}

struct Regex::State {
  pcre2_code* code = nullptr;
  pcre2_match_data* match = nullptr;
  pcre2_match_context* context = nullptr;
  pcre2_jit_stack* stack = nullptr;
  bool jit = false;
  ~State() {
    if (match) pcre2_match_data_free(match);
    if (context) pcre2_match_context_free(context);
    if (stack) pcre2_jit_stack_free(stack);
    if (code) pcre2_code_free(code);
  }
};

Regex::Regex(const std::string& pattern, const std::string& origin, bool newer_unicode)
    : state_(std::make_unique<State>()),
      compiled_(javascript_pattern(pattern, origin, newer_unicode)),
      origin_(origin) {
  int error = 0;
  PCRE2_SIZE offset = 0;
  state_->code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(compiled_.data()), compiled_.size(),
                               PCRE2_UTF | PCRE2_NO_UTF_CHECK, &error, &offset, nullptr);
  TRIDENT_USER_CHECK(state_->code != nullptr, origin,
                     ": the regular expression does not compile: ", pcre2_message(error),
                     " at offset ", offset, " of ", compiled_);
  state_->jit = pcre2_jit_compile(state_->code, PCRE2_JIT_COMPLETE) == 0;
  state_->match = pcre2_match_data_create_from_pattern(state_->code, nullptr);
  state_->context = pcre2_match_context_create(nullptr);
  TRIDENT_CHECK(state_->match != nullptr && state_->context != nullptr, "PCRE2 out of memory");
  if (state_->jit) {
    state_->stack = pcre2_jit_stack_create(32 * 1024, kJitStackMax, nullptr);
    TRIDENT_CHECK(state_->stack != nullptr, "PCRE2 JIT stack allocation failed");
    pcre2_jit_stack_assign(state_->context, nullptr, state_->stack);
  }
}

Regex::~Regex() = default;
Regex::Regex(Regex&&) noexcept = default;
Regex& Regex::operator=(Regex&&) noexcept = default;

bool Regex::find(std::string_view subject, size_t start, RegexMatch& match) const {
  const auto* data = reinterpret_cast<PCRE2_SPTR>(subject.data());
  const int rc = state_->jit ? pcre2_jit_match(state_->code, data, subject.size(), start, 0,
                                               state_->match, state_->context)
                             : pcre2_match(state_->code, data, subject.size(), start,
                                           PCRE2_NO_UTF_CHECK, state_->match, state_->context);
  if (rc == PCRE2_ERROR_NOMATCH) return false;
  // Anything else (a JIT stack or match limit) would silently mis-split the text: refuse.
  TRIDENT_USER_CHECK(rc > 0, origin_, ": matching failed on a ", subject.size(),
                     "-byte piece of text: ", pcre2_message(rc));
  const PCRE2_SIZE* ovector = pcre2_get_ovector_pointer(state_->match);
  match.begin = ovector[0];
  match.end = ovector[1];
  return true;
}

}  // namespace trident::io
