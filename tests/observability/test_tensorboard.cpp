#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>

#include "runtime/io/crc32c.h"
#include "runtime/io/tensorboard.h"

namespace trident::io {
namespace {

// Known CRC-32C check values (RFC 3720 appendix B.4 and the standard "123456789" check).
TEST(Crc32c, KnownValues) {
  EXPECT_EQ(crc32c("123456789", 9), 0xE3069283u);
  const std::string zeros(32, '\0');
  EXPECT_EQ(crc32c(zeros.data(), zeros.size()), 0x8A9136AAu);
  const std::string ones(32, '\xff');
  EXPECT_EQ(crc32c(ones.data(), ones.size()), 0x62A8AB43u);
}

TEST(TensorBoard, WritesFramedRecords) {
  const std::string dir = ::testing::TempDir() + "/tb_test";
  std::filesystem::remove_all(dir);
  std::string path;
  {
    TensorBoardWriter writer(dir);
    writer.add_scalar("train/loss", 2.5, 1);
    writer.add_scalar("train/loss", 2.25, 2);
    writer.flush();
    path = writer.path();
  }
  std::ifstream in(path, std::ios::binary);
  const std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  // Walk the frames and check both CRCs of each.
  size_t offset = 0;
  int records = 0;
  while (offset < bytes.size()) {
    ASSERT_LE(offset + 12, bytes.size());
    uint64_t length = 0;
    for (int i = 0; i < 8; ++i) length |= static_cast<uint64_t>(static_cast<unsigned char>(bytes[offset + i])) << (8 * i);
    uint32_t length_crc = 0;
    for (int i = 0; i < 4; ++i) length_crc |= static_cast<uint32_t>(static_cast<unsigned char>(bytes[offset + 8 + i])) << (8 * i);
    EXPECT_EQ(length_crc, masked_crc32c(bytes.data() + offset, 8));
    ASSERT_LE(offset + 12 + length + 4, bytes.size());
    uint32_t data_crc = 0;
    for (int i = 0; i < 4; ++i) data_crc |= static_cast<uint32_t>(static_cast<unsigned char>(bytes[offset + 12 + length + i])) << (8 * i);
    EXPECT_EQ(data_crc, masked_crc32c(bytes.data() + offset + 12, length));
    offset += 12 + length + 4;
    ++records;
  }
  EXPECT_EQ(records, 3);  // header + two scalars
  if (const char* keep = std::getenv("TRIDENT_TB_KEEP")) {
    std::filesystem::copy_file(path, keep, std::filesystem::copy_options::overwrite_existing);
  }
}

}  // namespace
}  // namespace trident::io
