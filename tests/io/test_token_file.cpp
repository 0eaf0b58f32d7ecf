#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>

#include "runtime/core/error.h"
#include "runtime/io/token_file.h"
#include "tests/io/temp_dir.h"
#include "tests/support/expect_user_error.h"

namespace trident::io {
namespace {

using testing::TempDir;
using trident::testing::expect_user_error;

std::vector<uint8_t> read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::vector<uint8_t>(std::istreambuf_iterator<char>(in), {});
}

void write_bytes(const std::string& path, const std::vector<uint8_t>& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(bytes.data()),
            static_cast<std::streamsize>(bytes.size()));
}

TEST(TokenFile, RoundTripWithMask) {
  for (TokenDType dtype : {TokenDType::U16, TokenDType::U32}) {
    TempDir dir;
    const std::string path = dir.file("t.bin");
    const std::vector<std::vector<int32_t>> docs = {{1, 2, 3}, {}, {65535, 0, 7, 9, 11}};
    const std::vector<std::vector<uint8_t>> masks = {{0, 1, 1}, {}, {}};
    {
      TokenFileWriter writer(path, {dtype, /*with_loss_mask=*/true, 0});
      for (size_t d = 0; d < docs.size(); ++d) writer.append(docs[d], masks[d]);
      EXPECT_FALSE(std::filesystem::exists(path)) << "visible before finish()";
      writer.finish();
    }
    const TokenFile file(path);
    EXPECT_EQ(file.dtype(), dtype);
    EXPECT_TRUE(file.has_loss_mask());
    ASSERT_EQ(file.num_documents(), 3u);
    ASSERT_EQ(file.num_tokens(), 8u);
    for (size_t d = 0; d < docs.size(); ++d) EXPECT_EQ(file.document_tokens(d), docs[d]);
    EXPECT_EQ(file.document(2).begin, 3u);
    const std::vector<uint8_t> expected_mask = {0, 1, 1, 1, 1, 1, 1, 1};  // unmasked doc: ones
    for (uint64_t i = 0; i < file.num_tokens(); ++i) EXPECT_EQ(file.loss_mask(i), expected_mask[i]);

    // Layout as documented: header, tokens, pad to 8, offsets, mask.
    const size_t width = dtype == TokenDType::U16 ? 2 : 4;
    const size_t offsets_at = 64 + ((8 * width + 7) / 8) * 8;
    EXPECT_EQ(read_bytes(path).size(), offsets_at + 4 * 8 + 8);
  }
}

TEST(TokenFile, HeaderBytesAreAsDocumented) {
  TempDir dir;
  const std::string path = dir.file("t.bin");
  TokenFileWriter writer(path, {TokenDType::U16, false, 256});
  writer.append(std::vector<int32_t>{104, 105});
  writer.finish();
  const std::vector<uint8_t> bytes = read_bytes(path);
  ASSERT_EQ(bytes.size(), 64u + 8u + 16u);
  EXPECT_EQ(std::string(bytes.begin(), bytes.begin() + 8), "TRDTOK01");
  EXPECT_EQ(bytes[8], 1);   // version
  EXPECT_EQ(bytes[12], 1);  // uint16
  EXPECT_EQ(bytes[14], 0);  // no mask
  EXPECT_EQ(bytes[16], 1);  // documents
  EXPECT_EQ(bytes[24], 2);  // tokens
  EXPECT_EQ(bytes[32], 0);  // vocab 256 = 0x100
  EXPECT_EQ(bytes[33], 1);
  EXPECT_EQ(bytes[64], 104);
  EXPECT_EQ(bytes[66], 105);
  EXPECT_EQ(bytes[72 + 8], 2);  // offsets {0, 2}
  EXPECT_FALSE(TokenFile(path).has_loss_mask());
  EXPECT_EQ(TokenFile(path).loss_mask(1), 1);
}

TEST(TokenFile, WriterRejectsBadInput) {
  TempDir dir;
  TokenFileWriter small(dir.file("a.bin"), {TokenDType::U16, false, 0});
  expect_user_error([&] { small.append(std::vector<int32_t>{70000}); }, {"70000", "uint16"});
  expect_user_error([&] { small.append(std::vector<int32_t>{-1}); }, {"-1"});
  expect_user_error([&] { small.append(std::vector<int32_t>{1}, std::vector<uint8_t>{1}); },
                    {"without a mask section"});
  TokenFileWriter masked(dir.file("b.bin"), {TokenDType::U32, true, 10});
  expect_user_error(
      [&] {
        masked.append(std::vector<int32_t>{1, 2}, std::vector<uint8_t>{1});
      },
      {"2 tokens but 1 mask"});
  expect_user_error([&] { masked.append(std::vector<int32_t>{10}); }, {"vocab_size 10"});
  expect_user_error([&] { masked.append(std::vector<int32_t>{1}, std::vector<uint8_t>{2}); },
                    {"0 or 1"});
}

class CorruptTokenFile : public ::testing::Test {
 protected:
  void SetUp() override {
    path_ = dir_.file("good.bin");
    TokenFileWriter writer(path_, {TokenDType::U16, true, 300});
    writer.append(std::vector<int32_t>{1, 2, 3}, std::vector<uint8_t>{0, 1, 1});
    writer.append(std::vector<int32_t>{4, 5});
    writer.finish();
    good_ = read_bytes(path_);
    ASSERT_NO_THROW(TokenFile{path_});
  }
  void expect_rejected(std::vector<uint8_t> bytes, std::initializer_list<std::string> fragments) {
    const std::string bad = dir_.file("bad.bin");
    write_bytes(bad, bytes);
    expect_user_error([&] { TokenFile file(bad); }, {bad});
    expect_user_error([&] { TokenFile file(bad); }, fragments);
  }
  TempDir dir_;
  std::string path_;
  std::vector<uint8_t> good_;
};

TEST_F(CorruptTokenFile, Truncated) {
  expect_rejected(std::vector<uint8_t>(good_.begin(), good_.end() - 1), {"truncated"});
  expect_rejected(std::vector<uint8_t>(good_.begin(), good_.begin() + 40), {"64-byte header"});
}

TEST_F(CorruptTokenFile, TrailingBytes) {
  std::vector<uint8_t> bytes = good_;
  bytes.push_back(0);
  expect_rejected(bytes, {"trailing"});
}

TEST_F(CorruptTokenFile, BadMagicVersionDtypeFlags) {
  std::vector<uint8_t> bytes = good_;
  bytes[0] = 'X';
  expect_rejected(bytes, {"magic"});
  bytes = good_;
  bytes[8] = 9;
  expect_rejected(bytes, {"version 9"});
  bytes = good_;
  bytes[12] = 3;
  expect_rejected(bytes, {"dtype code 3"});
  bytes = good_;
  bytes[14] = 6;
  expect_rejected(bytes, {"flag"});
}

TEST_F(CorruptTokenFile, HugeCountsDoNotOverflow) {
  std::vector<uint8_t> bytes = good_;
  std::memset(&bytes[16], 0xff, 16);  // documents and tokens = 2^64 - 1
  expect_rejected(bytes, {"corrupt header"});
}

TEST_F(CorruptTokenFile, BadOffsets) {
  const size_t offsets_at = 64 + 16;  // 5 uint16 tokens = 10 bytes, padded to 16
  std::vector<uint8_t> bytes = good_;
  bytes[offsets_at + 8] = 9;  // o_1 = 9 > o_2 = 5
  expect_rejected(bytes, {"decrease at document 1"});
  bytes = good_;
  bytes[offsets_at + 16] = 4;  // o_2 != N
  expect_rejected(bytes, {"end at 5"});
}

TEST_F(CorruptTokenFile, BadTokenOrMaskIsCaughtOnRead) {
  std::vector<uint8_t> bytes = good_;
  bytes[64 + 1] = 0x02;  // token 0 = 0x0201 = 513 >= vocab 300
  const std::string bad = dir_.file("bad.bin");
  write_bytes(bad, bytes);
  const TokenFile file(bad);
  std::vector<int32_t> out(5);
  expect_user_error([&] { file.copy(0, 5, out.data()); }, {bad, "513", "vocab_size 300"});
  bytes = good_;
  bytes[bytes.size() - 1] = 7;  // last mask entry
  write_bytes(bad, bytes);
  const TokenFile masked(bad);
  std::vector<uint8_t> mask(5);
  expect_user_error([&] { masked.copy(0, 5, out.data(), mask.data()); }, {bad, "mask entry 4"});
}

TEST(TokenFile, MissingFileNamesIt) {
  expect_user_error([] { TokenFile file("/nonexistent/x.bin"); }, {"/nonexistent/x.bin"});
}

}  // namespace
}  // namespace trident::io
