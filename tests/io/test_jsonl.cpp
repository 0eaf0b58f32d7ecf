#include <gtest/gtest.h>

#include <cmath>
#include <fstream>

#include "runtime/core/error.h"
#include "runtime/io/jsonl.h"
#include "tests/io/temp_dir.h"

namespace trident::io {
namespace {

std::vector<nlohmann::json> read_lines(const std::string& path) {
  std::ifstream in(path);
  std::vector<nlohmann::json> out;
  for (std::string line; std::getline(in, line);) out.push_back(nlohmann::json::parse(line));
  return out;
}

TEST(JsonlWriter, OneObjectPerLineFlushedAndAppended) {
  testing::TempDir dir;
  const std::string path = dir.file("metrics.jsonl");
  {
    JsonlWriter writer(path, /*append=*/false);
    writer.write({{"step", 1}, {"loss", 2.5}});
    EXPECT_EQ(read_lines(path).size(), 1u) << "each record is flushed at once";
    writer.write({{"step", 2}, {"loss", std::nan("")}, {"note", "a\nb"}});
  }
  {
    JsonlWriter resumed(path, /*append=*/true);
    resumed.write({{"step", 3}});
  }
  const std::vector<nlohmann::json> lines = read_lines(path);
  ASSERT_EQ(lines.size(), 3u);
  EXPECT_EQ(lines[0]["loss"], 2.5);
  EXPECT_TRUE(lines[1]["loss"].is_null());
  EXPECT_EQ(lines[1]["note"], "a\nb");
  EXPECT_EQ(lines[2]["step"], 3);
  JsonlWriter fresh(path, /*append=*/false);
  EXPECT_TRUE(read_lines(path).empty());
  EXPECT_THROW(fresh.write(nlohmann::json::array({1})), Error);
  EXPECT_THROW(JsonlWriter("/nonexistent/dir/m.jsonl"), UserError);
}

}  // namespace
}  // namespace trident::io
