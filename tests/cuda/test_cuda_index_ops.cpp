// The ops the device runtime added for tensor and expert parallelism against the CPU oracle:
// vocabulary-shard embedding and cross-entropy, rows by index, and the f32/bf16 conversion.
#include <cmath>

#include "ops/cpu/elementwise.h"
#include "ops/cpu/rows.h"
#include "ops/cpu/vocab_shard.h"
#include "ops/cuda/elementwise.h"
#include "ops/cuda/rows.h"
#include "ops/cuda/vocab_shard.h"
#include "ops/types.h"
#include "tests/cuda/cuda_test_util.h"

namespace trident::cuda_test {
namespace {

struct ShardCase {
  int64_t tokens, shard_vocab, shard_begin;
};
void PrintTo(const ShardCase& c, std::ostream* os) {
  *os << "tokens" << c.tokens << "_vocab" << c.shard_vocab << "_begin" << c.shard_begin;
}

class CudaVocabShard : public ::testing::TestWithParam<ShardCase> {};

// Targets over a vocabulary of three shards, some in this one, one ignored.
Tensor shard_targets(const ShardCase& c) {
  std::vector<int32_t> ids(static_cast<size_t>(c.tokens));
  for (int64_t t = 0; t < c.tokens; ++t) {
    ids[static_cast<size_t>(t)] = static_cast<int32_t>((t * 7) % (3 * c.shard_vocab));
  }
  ids[0] = ops::kIgnoreIndex;
  return Tensor::from_ints(ids, {c.tokens});
}

TEST_P(CudaVocabShard, EmbeddingOfAShard) {
  SKIP_WITHOUT_GPU();
  const ShardCase c = GetParam();
  const int64_t dim = 40;
  const Tensor ids = random_ids(c.tokens, 3 * c.shard_vocab, 1);
  const Tensor table = random_tensor({c.shard_vocab, dim}, 2);
  EXPECT_LE(
      written_error(
          {c.tokens, dim},
          [&](Tensor& out) { cpu::embedding_forward(ids, table, out, c.shard_begin); },
          [&](Tensor& out) { cuda::embedding_forward(gpu(ids), gpu(table), out, c.shard_begin); }),
      kFp32Tolerance);
  const Tensor dout = random_tensor({c.tokens, dim}, 3);
  EXPECT_LE(
      output_error(
          random_tensor({c.shard_vocab, dim}, 4), /*accumulate=*/true,
          [&](Tensor& dtable) { cpu::embedding_backward_weight(ids, dout, dtable, c.shard_begin); },
          [&](Tensor& dtable) {
            cuda::embedding_backward_weight(gpu(ids), gpu(dout), dtable, c.shard_begin);
          }),
      kFp32Tolerance);
}

TEST_P(CudaVocabShard, CrossEntropyPieces) {
  SKIP_WITHOUT_GPU();
  const ShardCase c = GetParam();
  const Tensor logits = random_tensor({c.tokens, c.shard_vocab}, 5, 3.0f);
  const Tensor targets = shard_targets(c);
  Tensor row_max = Tensor::empty({c.tokens});
  cpu::shard_row_max(logits, row_max);
  Tensor row_max_gpu = poisoned({c.tokens});
  cuda::shard_row_max(gpu(logits), row_max_gpu);
  EXPECT_EQ(gpu_error(row_max_gpu, row_max), 0.0);  // a max is exact
  EXPECT_LE(written_error(
                {2 * c.tokens},
                [&](Tensor& sums) {
                  cpu::shard_softmax_sums(logits, targets, c.shard_begin, row_max, sums);
                },
                [&](Tensor& sums) {
                  cuda::shard_softmax_sums(gpu(logits), gpu(targets), c.shard_begin, gpu(row_max),
                                           sums);
                }),
            kFp32Tolerance);
  const Tensor lse = random_tensor({c.tokens}, 6, 1.0f, 4.0f);
  EXPECT_LE(written_error(
                {c.tokens, c.shard_vocab},
                [&](Tensor& d) {
                  cpu::shard_cross_entropy_backward(logits, targets, lse, c.shard_begin, 0.5f, d);
                },
                [&](Tensor& d) {
                  cuda::shard_cross_entropy_backward(gpu(logits), gpu(targets), gpu(lse),
                                                     c.shard_begin, 0.5f, d);
                }),
            kFp32Tolerance);
}

TEST_P(CudaVocabShard, GrpoStatisticsAndGradient) {
  SKIP_WITHOUT_GPU();
  const ShardCase c = GetParam();
  const Tensor logits = random_tensor({c.tokens, c.shard_vocab}, 15, 3.0f);
  const Tensor targets = shard_targets(c);
  const Tensor row_max = random_tensor({c.tokens}, 16, 0.5f, 3.0f);
  const std::vector<double> want =
      cpu::shard_softmax_stats(logits, targets, c.shard_begin, row_max);
  const std::vector<double> got =
      cuda::shard_softmax_stats(gpu(logits), gpu(targets), c.shard_begin, gpu(row_max));
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < want.size(); ++i) {
    EXPECT_NEAR(got[i], want[i], 1e-9 * (1.0 + std::abs(want[i]))) << i;
  }
  std::vector<double> lse(static_cast<size_t>(c.tokens)), weights(lse.size());
  for (size_t t = 0; t < lse.size(); ++t) {
    lse[t] = 4.0 + 0.01 * static_cast<double>(t);
    weights[t] = t % 3 == 1 ? 0.0 : 0.5 - 0.1 * static_cast<double>(t % 5);
  }
  EXPECT_LE(written_error(
                {c.tokens, c.shard_vocab},
                [&](Tensor& d) {
                  cpu::shard_logprob_backward(logits, targets, c.shard_begin, lse, weights, d);
                },
                [&](Tensor& d) {
                  cuda::shard_logprob_backward(gpu(logits), gpu(targets), c.shard_begin, lse,
                                               weights, d);
                }),
            kFp32Tolerance);
}

INSTANTIATE_TEST_SUITE_P(Shapes, CudaVocabShard,
                         ::testing::Values(ShardCase{1, 1, 0}, ShardCase{7, 16, 16},
                                           ShardCase{300, 4096, 8192}));

TEST(CudaRows, GatherCombineAndItsGradient) {
  SKIP_WITHOUT_GPU();
  const int64_t tokens = 50, top_k = 3, width = 70, first = 10, n = 30;
  const int64_t rows = n * top_k - 9;  // nine dropped slots
  std::vector<int32_t> slots(static_cast<size_t>(n * top_k));
  int32_t next = 0;
  for (size_t s = 0; s < slots.size(); ++s) slots[s] = s % 10 == 3 ? -1 : next++;
  ASSERT_EQ(next, rows);
  const Tensor slot_row = Tensor::from_ints(slots, {n * top_k});
  const Tensor x = random_tensor({tokens, width}, 7);
  const Tensor index = random_ids(rows, tokens, 8);
  EXPECT_LE(written_error(
                {rows, width}, [&](Tensor& out) { cpu::gather_rows(x, index, out); },
                [&](Tensor& out) { cuda::gather_rows(gpu(x), gpu(index), out); }),
            kFp32Tolerance);
  const Tensor y = random_tensor({rows, width}, 9);
  const Tensor weights = random_tensor({tokens, top_k}, 10);
  for (const bool weighted : {true, false}) {
    const Tensor w = weighted ? weights : Tensor();
    EXPECT_LE(output_error(
                  random_tensor({tokens, width}, 11), /*accumulate=*/true,
                  [&](Tensor& out) { cpu::combine_rows(y, slot_row, top_k, w, first, out); },
                  [&](Tensor& out) {
                    cuda::combine_rows(gpu(y), gpu(slot_row), top_k,
                                       weighted ? gpu(weights) : Tensor(), first, out);
                  }),
              kFp32Tolerance);
  }
  const Tensor dout = random_tensor({tokens, width}, 12);
  Tensor d_rows = Tensor::empty({rows, width});
  Tensor d_weights = random_tensor({tokens, top_k}, 13);
  Tensor d_weights_gpu = gpu(d_weights);
  cpu::combine_rows_backward(dout, y, weights, slot_row, first, d_rows, d_weights);
  Tensor d_rows_gpu = poisoned({rows, width});
  cuda::combine_rows_backward(gpu(dout), gpu(y), gpu(weights), gpu(slot_row), first, d_rows_gpu,
                              d_weights_gpu);
  EXPECT_LE(gpu_error(d_rows_gpu, d_rows), kFp32Tolerance);
  EXPECT_LE(gpu_error(d_weights_gpu, d_weights), kFp32Tolerance);
}

TEST(CudaConvert, F32AndBf16BothWays) {
  SKIP_WITHOUT_GPU();
  const Tensor x = random_tensor({1000}, 14, 100.0f);
  Tensor narrow = Tensor::empty({1000}, DType::BF16);
  cpu::convert(x, narrow);
  Tensor narrow_gpu = poisoned({1000}, DType::BF16);
  cuda::convert(gpu(x), narrow_gpu);
  EXPECT_EQ(gpu_error(narrow_gpu.to(Device::CPU).to(DType::F32), narrow.to(DType::F32)), 0.0);
  Tensor wide_gpu = poisoned({1000});
  cuda::convert(gpu(narrow), wide_gpu);
  EXPECT_EQ(gpu_error(wide_gpu, narrow.to(DType::F32)), 0.0);
}

}  // namespace
}  // namespace trident::cuda_test
