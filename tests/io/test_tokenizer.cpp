#include <gtest/gtest.h>

#include "runtime/core/error.h"
#include "runtime/io/tokenizer.h"

namespace trident::io {
namespace {

TEST(ByteTokenizer, RoundTripsEveryByteAndUtf8) {
  std::string all;
  for (int b = 0; b < 256; ++b) all.push_back(static_cast<char>(b));
  const std::vector<int32_t> ids = ByteTokenizer::encode(all);
  ASSERT_EQ(ids.size(), 256u);
  for (int b = 0; b < 256; ++b) EXPECT_EQ(ids[b], b);
  EXPECT_EQ(ByteTokenizer::decode(ids), all);

  const std::string text = "Grüße, 世界 12+345=";
  EXPECT_EQ(ByteTokenizer::decode(ByteTokenizer::encode(text)), text);
  EXPECT_EQ(ByteTokenizer::encode(text).size(), text.size());  // bytes, not code points
}

TEST(ByteTokenizer, SpecialTokens) {
  const std::vector<int32_t> ids = ByteTokenizer::encode_document("ab", true, true);
  EXPECT_EQ(ids, (std::vector<int32_t>{ByteTokenizer::kBos, 'a', 'b', ByteTokenizer::kEos}));
  EXPECT_EQ(ByteTokenizer::encode_document("ab", false, false), ByteTokenizer::encode("ab"));
  EXPECT_TRUE(ByteTokenizer::has_special_bytes(std::string("a\x03", 2)));
  EXPECT_TRUE(ByteTokenizer::has_special_bytes(std::string("a\0", 2)));
  EXPECT_FALSE(ByteTokenizer::has_special_bytes("plain\ttext\n"));
  EXPECT_LE(ByteTokenizer::kBos, 255);
  EXPECT_LE(ByteTokenizer::kEos, 255);
}

TEST(ByteTokenizer, DecodeRejectsNonBytes) {
  EXPECT_THROW(ByteTokenizer::decode({65, 256}), UserError);
  EXPECT_THROW(ByteTokenizer::decode({-1}), UserError);
}

}  // namespace
}  // namespace trident::io
