#pragma once
// Deterministic batches. Sample g of step s is global sample s * global_batch + g, and its
// row is a pure function of (source, seed, that index): it is the same whatever the layout,
// so each data-parallel rank and micro-batch simply takes its slice of rows [begin, end) of
// the step's global batch, and the union of the slices is the global batch, bit for bit.
#include <cstdint>
#include <memory>
#include <optional>

#include "models/batch.h"
#include "runtime/io/arithmetic_prose.h"
#include "runtime/io/synthetic_task.h"
#include "runtime/io/token_file.h"

namespace trident::io {

struct BatchShape {
  int64_t global_batch = 0;  // rows per step
  int64_t seq_len = 0;       // model inputs per row; rows hold seq_len + 1 tokens
  uint64_t seed = 0;
};

struct RowRange {
  int64_t begin = 0;
  int64_t end = 0;
  int64_t size() const { return end - begin; }
};

// The rows of micro-batch `micro` on data-parallel rank `dp_rank`: the global batch is cut into
// dp_size equal contiguous parts, each into micro-batches of `micro_batch` rows. UserError if
// the sizes do not divide.
RowRange micro_batch_rows(int64_t global_batch, int64_t dp_size, int64_t dp_rank,
                          int64_t micro_batch, int64_t micro);

class BatchSampler {
 public:
  explicit BatchSampler(BatchShape shape);
  virtual ~BatchSampler() = default;

  // Rows [begin, end) of step `step`'s global batch.
  models::TokenBatch rows(int64_t step, int64_t begin, int64_t end) const;
  models::TokenBatch rows(int64_t step, RowRange range) const {
    return rows(step, range.begin, range.end);
  }
  models::TokenBatch global_batch(int64_t step) const { return rows(step, 0, shape_.global_batch); }
  const BatchShape& shape() const { return shape_; }

 protected:
  // Fills one row (seq_len + 1 tokens and mask entries) for a global sample index. Entry 0 of
  // the mask is cleared by the caller (it is never a target).
  virtual void fill_row(uint64_t sample, int32_t* tokens, uint8_t* mask) const = 0;

 private:
  BatchShape shape_;
};

enum class TokenFileMode : uint8_t {
  RandomWindows,  // a window of seq_len + 1 tokens at a random start (any document boundary)
  Packed,         // the token stream cut into consecutive windows, visited in order
  Documents,      // one random document per row, from its start, padded (SFT files)
};

// Rows from a token file; the mask comes from the file's mask section, or is all ones.
class TokenFileSampler final : public BatchSampler {
 public:
  TokenFileSampler(std::shared_ptr<const TokenFile> file, BatchShape shape, TokenFileMode mode);

 protected:
  void fill_row(uint64_t sample, int32_t* tokens, uint8_t* mask) const override;

 private:
  std::shared_ptr<const TokenFile> file_;
  TokenFileMode mode_;
};

// Rows from the arithmetic task: prompt + completion + EOS, padded with PAD (masked out) and
// truncated to seq_len + 1 tokens. SFT counts only completion and EOS tokens; pretrain counts
// every non-pad token. Sample k is problem k of the split. With `prose` the completion is
// document k of the prose corpus (arithmetic_prose.h): prose, or tagged for a share of rows.
class SyntheticSampler final : public BatchSampler {
 public:
  SyntheticSampler(ArithmeticOptions task, Split split, bool sft, BatchShape shape,
                   std::optional<ProseOptions> prose = std::nullopt);

 protected:
  void fill_row(uint64_t sample, int32_t* tokens, uint8_t* mask) const override;

 private:
  ArithmeticOptions task_;
  Split split_;
  bool sft_;
  std::optional<ProseOptions> prose_;
};

}  // namespace trident::io
