#include <gtest/gtest.h>

#include "runtime/io/byte_level.h"
#include "runtime/io/utf8.h"

namespace trident::io {
namespace {

TEST(Utf8, ValidText) {
  EXPECT_TRUE(is_valid_utf8(""));
  EXPECT_TRUE(is_valid_utf8("plain ASCII that is longer than eight bytes"));
  EXPECT_TRUE(is_valid_utf8("é 中 😀 \xF4\x8F\xBF\xBF"));  // up to U+10FFFF
  EXPECT_FALSE(is_valid_utf8("abc\x80"));
  EXPECT_FALSE(is_valid_utf8("\xC0\x80"));          // overlong NUL
  EXPECT_FALSE(is_valid_utf8("\xED\xA0\x80"));      // surrogate U+D800
  EXPECT_FALSE(is_valid_utf8("\xF4\x90\x80\x80"));  // above U+10FFFF
  EXPECT_FALSE(is_valid_utf8("\xE4\xBD"));          // cut short
}

// One U+FFFD per maximal subpart (the Unicode / WHATWG practice JavaScript and Python follow).
TEST(Utf8, RepairReplacesMaximalSubparts) {
  const std::string fffd = "\xEF\xBF\xBD";
  const auto repaired = [](std::string_view text) { return repair_utf8(text).text; };
  EXPECT_EQ(repaired("a\x80"
                     "b"),
            "a" + fffd + "b");
  EXPECT_EQ(repaired("\xE4\xBD"
                     "x"),
            fffd + "x");  // a truncated sequence is one subpart
  EXPECT_EQ(repaired("\xE4\xBD"), fffd);
  EXPECT_EQ(repaired("\xC0\x80"), fffd + fffd);  // C0 never starts a sequence
  EXPECT_EQ(repaired("\xED\xA0\x80"), fffd + fffd + fffd);
  EXPECT_EQ(repaired("\xF0\x9F\x98"), fffd);  // 😀 cut after three bytes
  EXPECT_EQ(repaired("\xF4\x90\x80\x80"), fffd + fffd + fffd + fffd);
  EXPECT_EQ(repaired("\xE2\x28\xA1"), fffd + "(" + fffd);
  const Utf8Repair r = repair_utf8("ok\xFF\xFE");
  EXPECT_EQ(r.replacements, 2);
  EXPECT_EQ(r.first_bad_byte, 2);
  EXPECT_EQ(repair_utf8("fine").replacements, 0);
  EXPECT_EQ(repair_utf8("fine").first_bad_byte, -1);
}

TEST(ByteLevel, AlphabetRoundTripsEveryByte) {
  std::string all;
  for (int b = 0; b < 256; ++b) all.push_back(static_cast<char>(b));
  const std::string spelled = byte_level_encode(all);
  EXPECT_TRUE(is_valid_utf8(spelled));
  EXPECT_EQ(byte_level_decode(spelled), all);
  // GPT-2's table: printable bytes stand for themselves, space is U+0120 ("Ġ"), newline U+010A.
  EXPECT_EQ(byte_level_encode("a b\n"),
            "a\xC4\xA0"
            "b\xC4\x8A");
  EXPECT_EQ(byte_level_code_point(0), 0x100u);
  EXPECT_EQ(byte_level_code_point(0xAD), 0x143u);             // the last of the 68 moved bytes
  EXPECT_FALSE(byte_level_decode("<｜User｜>").has_value());  // not in the alphabet: literal
}

}  // namespace
}  // namespace trident::io
