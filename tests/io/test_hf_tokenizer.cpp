#include <gtest/gtest.h>

#include <fstream>

#include "runtime/core/error.h"
#include "runtime/io/hf_tokenizer.h"
#include "tests/io/temp_dir.h"
#include "tests/io/tiny_tokenizer.h"

namespace trident::io {
namespace {

using testing::TempDir;
using testing::TinyTokenizer;
using Ids = std::vector<int32_t>;

int32_t byte(char c) { return static_cast<unsigned char>(c); }

// Merges apply by rank: the lowest-ranked applicable pair first, the leftmost on ties.
TEST(HfTokenizer, MergesByRankLeftmostFirst) {
  TempDir dir;
  TinyTokenizer t;
  t.merges = {{"a", "b"}, {"b", "c"}, {"ab", "c"}, {"a", "a"}, {"aa", "aa"}};
  t.write(dir.file("tokenizer.json"));
  HfTokenizer tok(dir.file("tokenizer.json"));
  EXPECT_EQ(tok.merges(), 5u);
  EXPECT_EQ(tok.encode("abc"), (Ids{t.merge_id(2)}));  // ab (rank 0) before bc (rank 1)
  EXPECT_EQ(tok.encode("bc"), (Ids{t.merge_id(1)}));
  EXPECT_EQ(tok.encode("aaa"), (Ids{t.merge_id(3), byte('a')}));  // leftmost pair merges first
  EXPECT_EQ(tok.encode("aaaa"), (Ids{t.merge_id(4)}));
  EXPECT_EQ(tok.encode("xabz"), (Ids{byte('x'), t.merge_id(0), byte('z')}));
  // A long piece (no pre-tokenizer: the whole text is one piece) stays linear.
  const std::string long_run(200000, 'a');
  const Ids ids = tok.encode(long_run);
  EXPECT_EQ(ids, Ids(50000, t.merge_id(4)));
  EXPECT_EQ(tok.decode(ids), long_run);
}

TEST(HfTokenizer, AddedTokensMatchLongestFirstBeforeSplitting) {
  TempDir dir;
  TinyTokenizer t;
  t.merges = {{"a", "b"}};
  t.added = {"<x>", "<x><y>", "ab<"};
  t.write(dir.file("tokenizer.json"));
  HfTokenizer tok(dir.file("tokenizer.json"));
  EXPECT_EQ(tok.added_tokens(), 3u);
  EXPECT_EQ(tok.encode("<x><y>"), (Ids{t.added_id(1)}));
  EXPECT_EQ(tok.encode("<x><z>"), (Ids{t.added_id(0), byte('<'), byte('z'), byte('>')}));
  // "ab<" starts before "<x>" and wins (leftmost), leaving "x>" as text.
  EXPECT_EQ(tok.encode("ab<x>"), (Ids{t.added_id(2), byte('x'), byte('>')}));
  EXPECT_EQ(tok.added_token_id("<x>"), t.added_id(0));
  EXPECT_EQ(tok.added_token_id("<q>"), -1);
  EXPECT_EQ(tok.decode(tok.encode("z<x><y>ab")), "z<x><y>ab");
}

TEST(HfTokenizer, StripFlagsOfAddedTokens) {
  TempDir dir;
  TinyTokenizer t;
  t.added = {"<l>", "<r>"};
  nlohmann::json config = t.json();
  config["added_tokens"][0]["lstrip"] = true;
  config["added_tokens"][1]["rstrip"] = true;
  t.write(dir.file("tokenizer.json"), config);
  HfTokenizer tok(dir.file("tokenizer.json"));
  EXPECT_EQ(tok.encode("a \t<l>b"), (Ids{byte('a'), t.added_id(0), byte('b')}));
  EXPECT_EQ(tok.encode("a<r> \u3000b"), (Ids{byte('a'), t.added_id(1), byte('b')}));
}

TEST(HfTokenizer, InvalidUtf8IsReplacedAndDecodingIsExact) {
  TempDir dir;
  TinyTokenizer t;
  t.write(dir.file("tokenizer.json"));
  HfTokenizer tok(dir.file("tokenizer.json"));
  // The byte 0x80 alone is not text: it is encoded as U+FFFD, the way a string-based
  // tokenizer sees it.
  EXPECT_EQ(tok.encode("a\x80"), (Ids{byte('a'), 0xEF, 0xBF, 0xBD}));
  // Decoding gives the exact bytes, even ones that are not valid UTF-8 on their own.
  EXPECT_EQ(tok.decode(Ids{0xE4, 0xB8}), "\xE4\xB8");
  EXPECT_THROW(tok.decode(Ids{byte('a'), 9999}), UserError);
  EXPECT_THROW(tok.decode(Ids{-1}), UserError);
  EXPECT_EQ(tok.vocab_size(), 256);
  EXPECT_EQ(tok.bos_id(), -1);  // no tokenizer_config.json beside it
  EXPECT_FALSE(tok.bos_starts_documents());
}

TEST(HfTokenizer, SpecialTokensComeFromTokenizerConfig) {
  TempDir dir;
  TinyTokenizer t;
  t.added = {"<bos>", "<eos>"};
  t.write(dir.file("tokenizer.json"));
  std::ofstream(dir.file("tokenizer_config.json"))
      << R"({"add_bos_token": true, "bos_token": {"__type": "AddedToken", "content": "<bos>"},
             "eos_token": "<eos>"})";
  HfTokenizer tok(dir.file("tokenizer.json"));
  EXPECT_EQ(tok.bos_id(), t.added_id(0));
  EXPECT_EQ(tok.eos_id(), t.added_id(1));
  EXPECT_TRUE(tok.bos_starts_documents());

  std::ofstream(dir.file("tokenizer_config.json")) << R"({"eos_token": "<end>"})";
  EXPECT_THROW(HfTokenizer{dir.file("tokenizer.json")}, UserError);
}

void expect_refused(const std::string& path, const std::string& words) {
  try {
    HfTokenizer tok(path);
    ADD_FAILURE() << "accepted " << path;
  } catch (const UserError& e) {
    EXPECT_NE(std::string(e.what()).find(words), std::string::npos) << e.what();
  }
}

TEST(HfTokenizer, RefusesWhatItCannotEncodeFaithfully) {
  TempDir dir;
  TinyTokenizer t;
  t.merges = {{"a", "b"}};
  const std::string path = dir.file("tokenizer.json");
  const auto variant = [&](auto&& change) {
    nlohmann::json config = t.json();
    change(config);
    t.write(path, config);
  };
  variant([](nlohmann::json& c) { c["normalizer"] = {{"type", "NFC"}}; });
  expect_refused(path, "normalizer");
  variant([](nlohmann::json& c) { c["model"]["type"] = "WordPiece"; });
  expect_refused(path, "BPE");
  variant([](nlohmann::json& c) { c["model"]["byte_fallback"] = true; });
  expect_refused(path, "byte_fallback");
  variant([](nlohmann::json& c) { c["model"]["merges"].push_back("a z"); });
  expect_refused(path, "merges[1]");  // "az" is not in the vocabulary
  variant([](nlohmann::json& c) { c["model"]["vocab"].erase("a"); });
  expect_refused(path, "no token for byte 97");
  variant([](nlohmann::json& c) {
    c["added_tokens"] = {{{"id", 300}, {"content", "<s>"}, {"single_word", true}}};
  });
  expect_refused(path, "single_word");
  // Ids index dense tables: a stray huge id is refused instead of allocating gigabytes (a fuzz
  // finding: 3000000000 wrapped to a negative int32, 500000000 asked for 16 GB).
  for (const int64_t id : {int64_t{3000000000}, int64_t{500000000}, int64_t{1} << 24}) {
    variant([&](nlohmann::json& c) {
      c["added_tokens"] = {{{"id", id}, {"content", "<s>"}}};
    });
    expect_refused(path, "added_tokens[0]: needs an integer \"id\" in [0, 16777216)");
    variant([&](nlohmann::json& c) { c["model"]["vocab"]["ab"] = id; });
    expect_refused(path, "must be an integer id in [0, 16777216), got " + std::to_string(id));
  }
  std::ofstream(path) << "{not json";
  expect_refused(path, "not valid JSON");
  expect_refused(dir.file("missing.json"), "cannot read");
}

}  // namespace
}  // namespace trident::io
