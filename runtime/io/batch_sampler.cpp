#include "runtime/io/batch_sampler.h"

#include <algorithm>

#include "runtime/core/error.h"
#include "runtime/core/rng.h"
#include "runtime/io/tokenizer.h"

namespace trident::io {

namespace {
uint64_t random64(const CounterRng& rng, uint64_t index) {
  return (static_cast<uint64_t>(rng.bits(2 * index)) << 32) | rng.bits(2 * index + 1);
}
}  // namespace

RowRange micro_batch_rows(int64_t global_batch, int64_t dp_size, int64_t dp_rank,
                          int64_t micro_batch, int64_t micro) {
  TRIDENT_USER_CHECK(dp_size > 0 && global_batch % dp_size == 0,
                     "train.global_batch = ", global_batch,
                     " must be a multiple of the data-parallel size ", dp_size);
  const int64_t per_rank = global_batch / dp_size;
  TRIDENT_USER_CHECK(micro_batch > 0 && per_rank % micro_batch == 0,
                     "train.micro_batch = ", micro_batch,
                     " must divide the rows per data-parallel rank (", per_rank, " = global_batch ",
                     global_batch, " / dp ", dp_size, ")");
  TRIDENT_CHECK(dp_rank >= 0 && dp_rank < dp_size && micro >= 0 && micro < per_rank / micro_batch,
                "dp_rank ", dp_rank, " micro ", micro);
  const int64_t begin = dp_rank * per_rank + micro * micro_batch;
  return RowRange{begin, begin + micro_batch};
}

BatchSampler::BatchSampler(BatchShape shape) : shape_(shape) {
  TRIDENT_USER_CHECK(shape_.global_batch > 0, "train.global_batch must be positive, got ",
                     shape_.global_batch);
  TRIDENT_USER_CHECK(shape_.seq_len > 0, "train.seq_len must be positive, got ", shape_.seq_len);
}

models::TokenBatch BatchSampler::rows(int64_t step, int64_t begin, int64_t end) const {
  TRIDENT_CHECK(step >= 0 && 0 <= begin && begin <= end && end <= shape_.global_batch, "rows [",
                begin, ", ", end, ") of step ", step, " with global batch ", shape_.global_batch);
  const int64_t width = shape_.seq_len + 1;
  models::TokenBatch batch;
  batch.batch = end - begin;
  batch.seq_len = shape_.seq_len;
  batch.tokens.assign(static_cast<size_t>(batch.batch * width), ByteTokenizer::kPad);
  batch.loss_mask.assign(static_cast<size_t>(batch.batch * width), 0);
  for (int64_t row = begin; row < end; ++row) {
    const uint64_t sample =
        static_cast<uint64_t>(step) * static_cast<uint64_t>(shape_.global_batch) +
        static_cast<uint64_t>(row);
    const size_t at = static_cast<size_t>((row - begin) * width);
    fill_row(sample, &batch.tokens[at], &batch.loss_mask[at]);
    batch.loss_mask[at] = 0;
  }
  return batch;
}

TokenFileSampler::TokenFileSampler(std::shared_ptr<const TokenFile> file, BatchShape shape,
                                   TokenFileMode mode)
    : BatchSampler(shape), file_(std::move(file)), mode_(mode) {
  const uint64_t width = static_cast<uint64_t>(shape.seq_len) + 1;
  TRIDENT_USER_CHECK(mode_ == TokenFileMode::Documents || file_->num_tokens() >= width,
                     "token file '", file_->path(), "' has ", file_->num_tokens(),
                     " tokens, fewer than one row of train.seq_len + 1 = ", width);
  TRIDENT_USER_CHECK(mode_ != TokenFileMode::Documents || file_->num_documents() > 0,
                     "token file '", file_->path(), "' has no documents");
}

void TokenFileSampler::fill_row(uint64_t sample, int32_t* tokens, uint8_t* mask) const {
  const uint64_t width = static_cast<uint64_t>(shape().seq_len) + 1;
  const CounterRng rng(shape().seed, stream_id("data/token_file"));
  switch (mode_) {
    case TokenFileMode::RandomWindows: {
      const uint64_t start = random64(rng, sample) % (file_->num_tokens() - width + 1);
      file_->copy(start, start + width, tokens, mask);
      return;
    }
    case TokenFileMode::Packed: {
      const uint64_t windows = file_->num_tokens() / width;
      const uint64_t start = (sample % windows) * width;
      file_->copy(start, start + width, tokens, mask);
      return;
    }
    case TokenFileMode::Documents: {
      const DocumentRange doc = file_->document(random64(rng, sample) % file_->num_documents());
      const uint64_t length = std::min<uint64_t>(doc.size(), width);
      file_->copy(doc.begin, doc.begin + length, tokens, mask);  // the rest stays PAD, mask 0
      return;
    }
  }
}

SyntheticSampler::SyntheticSampler(ArithmeticOptions task, Split split, bool sft, BatchShape shape,
                                   std::optional<ProseOptions> prose)
    : BatchSampler(shape), task_(task), split_(split), sft_(sft), prose_(prose) {
  make_problem(shape.seed, split, 0, task_);  // validates the options up front
  if (prose_) check_prose_options(*prose_);
}

void SyntheticSampler::fill_row(uint64_t sample, int32_t* tokens, uint8_t* mask) const {
  const size_t width = static_cast<size_t>(shape().seq_len) + 1;
  ArithmeticProblem problem;
  if (prose_) {
    ProseDocument doc = make_prose_document(shape().seed, split_, sample, task_, *prose_);
    problem = std::move(doc.problem);
    problem.completion = std::move(doc.completion);
  } else {
    problem = make_problem(shape().seed, split_, sample, task_);
  }
  const std::vector<int32_t> prompt = ByteTokenizer::encode(problem.prompt);
  const std::vector<int32_t> completion =
      ByteTokenizer::encode_document(problem.completion, /*add_bos=*/false, /*add_eos=*/true);
  size_t at = 0;
  for (size_t i = 0; i < prompt.size() && at < width; ++i, ++at) {
    tokens[at] = prompt[i];
    mask[at] = sft_ ? 0 : 1;
  }
  for (size_t i = 0; i < completion.size() && at < width; ++i, ++at) {
    tokens[at] = completion[i];
    mask[at] = 1;
  }
}

}  // namespace trident::io
