#include <gtest/gtest.h>

#include <set>

#include "runtime/core/error.h"
#include "runtime/io/batch_sampler.h"
#include "runtime/io/tokenizer.h"
#include "tests/io/temp_dir.h"

namespace trident::io {
namespace {

using models::TokenBatch;
using testing::TempDir;

// Concatenates the slices every (dp rank, micro-batch) takes and checks they equal the
// global batch computed at once.
void expect_slices_match_global(const BatchSampler& sampler, int64_t step, int64_t dp,
                                int64_t micro_batch) {
  const TokenBatch global = sampler.global_batch(step);
  const int64_t rows = sampler.shape().global_batch;
  TokenBatch joined;
  for (int64_t rank = 0; rank < dp; ++rank) {
    for (int64_t micro = 0; micro < rows / dp / micro_batch; ++micro) {
      const RowRange range = micro_batch_rows(rows, dp, rank, micro_batch, micro);
      const TokenBatch part = sampler.rows(step, range);
      ASSERT_EQ(part.batch, micro_batch);
      ASSERT_EQ(part.seq_len, global.seq_len);
      joined.tokens.insert(joined.tokens.end(), part.tokens.begin(), part.tokens.end());
      joined.loss_mask.insert(joined.loss_mask.end(), part.loss_mask.begin(), part.loss_mask.end());
    }
  }
  EXPECT_EQ(joined.tokens, global.tokens) << "dp " << dp << " micro_batch " << micro_batch;
  EXPECT_EQ(joined.loss_mask, global.loss_mask) << "dp " << dp << " micro_batch " << micro_batch;
}

TEST(MicroBatchRows, CutsContiguously) {
  EXPECT_EQ(micro_batch_rows(16, 2, 1, 4, 1).begin, 12);
  EXPECT_EQ(micro_batch_rows(16, 2, 1, 4, 1).end, 16);
  EXPECT_EQ(micro_batch_rows(16, 4, 0, 2, 1).begin, 2);
  EXPECT_THROW(micro_batch_rows(16, 3, 0, 1, 0), UserError);
  EXPECT_THROW(micro_batch_rows(16, 2, 0, 3, 0), UserError);
}

TEST(SyntheticSampler, SftRowsAndMask) {
  const BatchShape shape{8, 80, 9};
  const SyntheticSampler sampler(ArithmeticOptions{3, 1}, Split::Train, /*sft=*/true, shape);
  const TokenBatch batch = sampler.global_batch(2);
  ASSERT_EQ(batch.batch, 8);
  ASSERT_EQ(batch.tokens.size(), 8u * 81u);
  for (int64_t row = 0; row < batch.batch; ++row) {
    const ArithmeticProblem p = make_problem(9, Split::Train, 2 * 8 + row, ArithmeticOptions{3, 1});
    const std::string text = p.prompt + p.completion + '\x03';
    ASSERT_LE(text.size(), 81u);
    for (int64_t pos = 0; pos <= batch.seq_len; ++pos) {
      const size_t at = static_cast<size_t>(pos);
      if (at < text.size()) {
        EXPECT_EQ(batch.token(row, pos), static_cast<unsigned char>(text[at]));
        EXPECT_EQ(batch.counts(row, pos), at >= p.prompt.size()) << "row " << row << " pos " << pos;
      } else {
        EXPECT_EQ(batch.token(row, pos), ByteTokenizer::kPad);
        EXPECT_FALSE(batch.counts(row, pos));
      }
    }
  }
}

TEST(SyntheticSampler, PretrainMaskCoversAllButPaddingAndFirst) {
  const SyntheticSampler sampler(ArithmeticOptions{2, 7}, Split::Eval, /*sft=*/false,
                                 BatchShape{4, 48, 1});
  const TokenBatch batch = sampler.global_batch(0);
  for (int64_t row = 0; row < batch.batch; ++row) {
    const ArithmeticProblem p = make_problem(1, Split::Eval, row, ArithmeticOptions{2, 7});
    const int64_t length = static_cast<int64_t>(p.prompt.size() + p.completion.size() + 1);
    EXPECT_FALSE(batch.counts(row, 0));
    for (int64_t pos = 1; pos <= batch.seq_len; ++pos) {
      EXPECT_EQ(batch.counts(row, pos), pos < length);
    }
  }
}

TEST(SyntheticSampler, TruncatesLongRows) {
  const SyntheticSampler sampler(ArithmeticOptions{6, 1}, Split::Train, true, BatchShape{2, 10, 1});
  const TokenBatch batch = sampler.global_batch(0);
  const ArithmeticProblem p = make_problem(1, Split::Train, 0, 6);
  const std::string text = p.prompt + p.completion;
  for (int64_t pos = 0; pos <= 10; ++pos) {
    EXPECT_EQ(batch.token(0, pos), static_cast<unsigned char>(text[static_cast<size_t>(pos)]));
  }
}

TEST(SyntheticSampler, LayoutIndependent) {
  const SyntheticSampler sampler(ArithmeticOptions{3, 7}, Split::Train, true,
                                 BatchShape{16, 40, 5});
  for (int64_t step : {0, 1, 7}) {
    expect_slices_match_global(sampler, step, 1, 16);
    expect_slices_match_global(sampler, step, 2, 2);
    expect_slices_match_global(sampler, step, 4, 1);
    expect_slices_match_global(sampler, step, 8, 2);
  }
  // A second sampler built the same way gives the same rows; another step differs.
  const SyntheticSampler again(ArithmeticOptions{3, 7}, Split::Train, true, BatchShape{16, 40, 5});
  EXPECT_EQ(again.global_batch(3).tokens, sampler.global_batch(3).tokens);
  EXPECT_NE(sampler.global_batch(3).tokens, sampler.global_batch(4).tokens);
  // Row g of step s is sample s * G + g: rows of step 1 are rows 16.. of a batch of 32.
  const SyntheticSampler wide(ArithmeticOptions{3, 7}, Split::Train, true, BatchShape{32, 40, 5});
  EXPECT_EQ(wide.rows(0, 16, 32).tokens, sampler.global_batch(1).tokens);
}

TEST(SyntheticSampler, ProsePretrainRows) {
  // data.task = "arithmetic_prose" under train.mode = "pretrain": prompt, prose (or the tagged
  // completion) and EOS, every token counted but the first and the padding.
  const ProseOptions prose{0.25};
  const SyntheticSampler sampler(ArithmeticOptions{2, 1}, Split::Train, /*sft=*/false,
                                 BatchShape{32, 128, 3}, prose);
  const TokenBatch batch = sampler.global_batch(1);
  int tagged = 0;
  for (int64_t row = 0; row < batch.batch; ++row) {
    const ProseDocument doc =
        make_prose_document(3, Split::Train, 32 + row, ArithmeticOptions{2, 1}, prose);
    tagged += doc.tagged;
    const std::string text = doc.problem.prompt + doc.completion + '\x03';
    for (int64_t pos = 0; pos <= batch.seq_len; ++pos) {
      const size_t at = static_cast<size_t>(pos);
      EXPECT_EQ(batch.token(row, pos),
                at < text.size() ? static_cast<unsigned char>(text[at]) : ByteTokenizer::kPad);
      EXPECT_EQ(batch.counts(row, pos), pos > 0 && at < text.size());
    }
  }
  EXPECT_GT(tagged, 0);  // both kinds of rows
  EXPECT_LT(tagged, 16);
  expect_slices_match_global(sampler, 2, 2, 4);
  EXPECT_THROW(SyntheticSampler(ArithmeticOptions{2, 1}, Split::Train, false, BatchShape{8, 96, 3},
                                ProseOptions{2.0}),
               UserError);
}

class TokenFileSamplerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    path_ = dir_.file("data.bin");
    TokenFileWriter writer(path_, {TokenDType::U16, true, 0});
    uint16_t next = 1;
    for (int doc = 0; doc < 20; ++doc) {
      std::vector<int32_t> tokens;
      std::vector<uint8_t> mask;
      for (int i = 0; i < 5 + doc; ++i) {
        tokens.push_back(next++);
        mask.push_back(static_cast<uint8_t>(i % 3 != 0));
      }
      writer.append(tokens, mask);
    }
    writer.finish();
    file_ = std::make_shared<const TokenFile>(path_);
  }
  TempDir dir_;
  std::string path_;
  std::shared_ptr<const TokenFile> file_;
};

TEST_F(TokenFileSamplerTest, WindowsAreSlicesOfTheFile) {
  const TokenFileSampler sampler(file_, BatchShape{8, 15, 3}, TokenFileMode::RandomWindows);
  const TokenBatch batch = sampler.global_batch(5);
  std::set<int32_t> starts;
  for (int64_t row = 0; row < batch.batch; ++row) {
    const int32_t first = batch.token(row, 0);  // token ids are 1 + their file index
    starts.insert(first);
    ASSERT_LE(static_cast<uint64_t>(first - 1 + 16), file_->num_tokens());
    for (int64_t pos = 0; pos <= 15; ++pos) {
      const uint64_t index = static_cast<uint64_t>(first - 1 + pos);
      EXPECT_EQ(batch.token(row, pos), static_cast<int32_t>(index + 1));
      EXPECT_EQ(batch.counts(row, pos), pos > 0 && file_->loss_mask(index) == 1);
    }
  }
  EXPECT_GT(starts.size(), 4u) << "windows should start at varied places";
  for (int64_t step : {0, 5}) {
    expect_slices_match_global(sampler, step, 2, 2);
    expect_slices_match_global(sampler, step, 8, 1);
  }
}

TEST_F(TokenFileSamplerTest, PackedVisitsConsecutiveWindows) {
  const TokenFileSampler sampler(file_, BatchShape{4, 9, 3}, TokenFileMode::Packed);
  const uint64_t windows = file_->num_tokens() / 10;
  for (int64_t step = 0; step < 10; ++step) {
    const TokenBatch batch = sampler.global_batch(step);
    for (int64_t row = 0; row < 4; ++row) {
      const uint64_t window = static_cast<uint64_t>(step * 4 + row) % windows;
      EXPECT_EQ(batch.token(row, 0), static_cast<int32_t>(window * 10 + 1));
      EXPECT_EQ(batch.token(row, 9), static_cast<int32_t>(window * 10 + 10));
    }
  }
  expect_slices_match_global(sampler, 3, 2, 1);
}

TEST_F(TokenFileSamplerTest, DocumentsArePaddedAndMasked) {
  const TokenFileSampler sampler(file_, BatchShape{6, 15, 3}, TokenFileMode::Documents);
  const TokenBatch batch = sampler.global_batch(1);
  for (int64_t row = 0; row < batch.batch; ++row) {
    const int32_t first = batch.token(row, 0);
    uint64_t doc = 0;
    while (file_->document(doc).begin + 1 != static_cast<uint64_t>(first)) {
      ++doc;
      ASSERT_LT(doc, file_->num_documents()) << "row does not start at a document";
    }
    const DocumentRange range = file_->document(doc);
    for (int64_t pos = 0; pos <= 15; ++pos) {
      const uint64_t index = range.begin + static_cast<uint64_t>(pos);
      if (index < range.end) {
        EXPECT_EQ(batch.token(row, pos), static_cast<int32_t>(index + 1));
        EXPECT_EQ(batch.counts(row, pos), pos > 0 && file_->loss_mask(index) == 1);
      } else {
        EXPECT_EQ(batch.token(row, pos), ByteTokenizer::kPad);
        EXPECT_FALSE(batch.counts(row, pos));
      }
    }
  }
  expect_slices_match_global(sampler, 1, 3, 1);
}

TEST_F(TokenFileSamplerTest, FileTooShortIsAUserError) {
  EXPECT_THROW(TokenFileSampler(file_, BatchShape{1, 100000, 1}, TokenFileMode::RandomWindows),
               UserError);
}

}  // namespace
}  // namespace trident::io
