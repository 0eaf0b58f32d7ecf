#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "runtime/core/error.h"
#include "runtime/io/pre_tokenizer.h"

namespace trident::io {
namespace {

using nlohmann::json;
using Pieces = std::vector<std::string>;

// DeepSeek-V3's pre-tokenizer, as its tokenizer.json writes it.
json deepseek_v3_pre_tokenizer() {
  const auto split = [](const std::string& regex) {
    return json{{"type", "Split"},
                {"pattern", {{"Regex", regex}}},
                {"behavior", "Isolated"},
                {"invert", false}};
  };
  return {{"type", "Sequence"},
          {"pretokenizers",
           {split("\\p{N}{1,3}"),
            split("[一-龥぀-ゟ゠-ヿ]+"),
            split("[!\"#$%&'()*+,\\-./:;<=>?@\\[\\\\\\]^_`{|}~][A-Za-z]+|[^\r\n\\p{L}\\p{P}\\p{S}]?"
                  "[\\p{L}\\p{M}]+| ?[\\p{P}\\p{S}]+[\r\n]*|\\s*[\r\n]+|\\s+(?!\\S)|\\s+"),
            {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"use_regex", false}}}}};
}

Pieces split(PreTokenizer& pre, const std::string& text) {
  std::vector<std::string_view> views;
  pre.split(text, views);
  return Pieces(views.begin(), views.end());
}

TEST(PreTokenizer, DeepSeekV3Splits) {
  PreTokenizer pre(deepseek_v3_pre_tokenizer(), "test");
  EXPECT_EQ(pre.steps(), 3u);  // ByteLevel without its regex only maps bytes (in the BPE)
  // Digits in groups of three from the left; words keep one leading non-letter.
  EXPECT_EQ(split(pre, "Hello world 12345 abc"),
            (Pieces{"Hello", " world", " ", "123", "45", " abc"}));
  // A CJK run is its own piece; the look-ahead only sees the piece it runs on.
  EXPECT_EQ(split(pre, "a 中文b"), (Pieces{"a", " ", "中文", "b"}));
  // Punctuation followed by letters stays together; runs of punctuation take the newlines.
  EXPECT_EQ(split(pre, "x.y ...\n\nz"), (Pieces{"x", ".y", " ...\n\n", "z"}));
  // Trailing spaces before a word go to the word except the last one.
  EXPECT_EQ(split(pre, "a   b"), (Pieces{"a", "  ", " b"}));
  EXPECT_EQ(split(pre, "a\r\n  b"), (Pieces{"a", "\r\n", " ", " b"}));
  EXPECT_EQ(split(pre, ""), Pieces{});
}

// \s is JavaScript's: U+FEFF is whitespace, U+0085 is not (PCRE2's own \s has it the other way).
TEST(PreTokenizer, WhitespaceIsJavaScripts) {
  PreTokenizer pre(deepseek_v3_pre_tokenizer(), "test");
  EXPECT_EQ(split(pre, "x\xEF\xBB\xBF\n"), (Pieces{"x", "\xEF\xBB\xBF\n"}));
  EXPECT_EQ(split(pre, "x\xC2\x85\n"), (Pieces{"x", "\xC2\x85", "\n"}));
  // Inside a class too; an escaped backslash before 's' is left alone.
  RegexMatch m;
  ASSERT_TRUE(Regex("[\\sx]+", "t").find("ab \xEF\xBB\xBFx\xC2\x85", 0, m));
  EXPECT_EQ(m.begin, 2u);
  EXPECT_EQ(m.end, 7u);
  ASSERT_TRUE(Regex("\\\\s", "t").find("a\\sb", 0, m));
  EXPECT_EQ(m.begin, 1u);
  EXPECT_EQ(m.end, 3u);
  EXPECT_THROW(javascript_pattern("[\\S]", "t"), UserError);
}

// Categories mean what they mean to the reference encoder's newer Unicode: 🩷 (U+1FA77, a symbol
// since Unicode 15) joins the space before it as punctuation/symbols do, and the CJK
// extension H ideograph U+31350 is a letter inside a word. PCRE2's Unicode 14 tables know
// neither.
TEST(PreTokenizer, NewerUnicodeCategories) {
  PreTokenizer pre(deepseek_v3_pre_tokenizer(), "test");
  EXPECT_EQ(split(pre, "a \U0001FA77"), (Pieces{"a", " \U0001FA77"}));
  EXPECT_EQ(split(pre, "x\U00031350y z"), (Pieces{"x\U00031350y", " z"}));
  RegexMatch m;
  ASSERT_TRUE(Regex("\\P{L}+", "t").find("ab\U0001FA77c", 0, m));  // outside a class, negated
  EXPECT_EQ(m.begin, 2u);
  EXPECT_EQ(m.end, 6u);
  // Ll both gains and loses characters since Unicode 14: no single class can say that.
  EXPECT_THROW(javascript_pattern("[\\p{Ll}x]", "t"), UserError);
  EXPECT_NO_THROW(javascript_pattern("\\p{Ll}", "t"));
}

TEST(PreTokenizer, SplitBehaviors) {
  const auto with = [](const char* behavior) {
    return PreTokenizer(json{{"type", "Split"},
                             {"pattern", {{"String", "-"}}},
                             {"behavior", behavior},
                             {"invert", false}},
                        "test");
  };
  PreTokenizer isolated = with("Isolated"), removed = with("Removed");
  PreTokenizer previous = with("MergedWithPrevious"), next = with("MergedWithNext");
  EXPECT_EQ(split(isolated, "a-b--c-"), (Pieces{"a", "-", "b", "-", "-", "c", "-"}));
  EXPECT_EQ(split(removed, "a-b--c-"), (Pieces{"a", "b", "c"}));
  EXPECT_EQ(split(previous, "a-b--c-"), (Pieces{"a-", "b-", "-", "c-"}));
  EXPECT_EQ(split(next, "-a-b--c"), (Pieces{"-a", "-b", "-", "-c"}));
}

TEST(PreTokenizer, ByteLevelRegexIsGpt2s) {
  PreTokenizer pre(json{{"type", "ByteLevel"}, {"add_prefix_space", false}}, "test");
  EXPECT_EQ(split(pre, "I'm  fine, 42!"), (Pieces{"I", "'m", " ", " fine", ",", " 42", "!"}));
}

TEST(PreTokenizer, RefusesWhatItDoesNotSupport) {
  const auto refused = [](const json& config, const std::string& words) {
    try {
      PreTokenizer pre(config, "tok.json");
      ADD_FAILURE() << "accepted " << config.dump();
    } catch (const UserError& e) {
      EXPECT_NE(std::string(e.what()).find(words), std::string::npos) << e.what();
    }
  };
  refused({{"type", "Metaspace"}}, "\"Metaspace\" is not supported");
  refused({{"type", "Split"}, {"pattern", {{"Regex", "a"}}}, {"behavior", "Contiguous"}},
          "Contiguous");
  refused({{"type", "Split"}, {"pattern", {{"Regex", "a"}}}, {"invert", true}}, "invert");
  refused({{"type", "Split"}, {"pattern", {{"Regex", "(unclosed"}}}}, "does not compile");
  refused({{"type", "ByteLevel"}, {"add_prefix_space", true}}, "add_prefix_space");
}

}  // namespace
}  // namespace trident::io
