// The TP building blocks against their one-rank counterparts: the f/g operators, the
// vocab-parallel embedding and the vocab-parallel cross-entropy (including ignored targets and
// targets owned by every rank).
#include <gtest/gtest.h>

#include <vector>

#include "ops/ops.h"
#include "parallel/tp/tp_group.h"
#include "parallel/tp/vocab_parallel.h"
#include "runtime/core/error.h"
#include "runtime/core/rng.h"
#include "tests/support/tensor_gather.h"
#include "tests/support/world_group.h"

namespace trident::parallel::tp {
namespace {

Tensor random_tensor(const Shape& shape, uint64_t seed, float scale) {
  Tensor t = Tensor::empty(shape);
  const CounterRng rng(seed, stream_id("tp-test"));
  float* data = t.data<float>();
  for (int64_t i = 0; i < t.numel(); ++i) data[i] = scale * rng.normal(static_cast<uint64_t>(i));
  return t;
}

// Columns [begin, begin + count) of a [rows, cols] tensor.
Tensor column_block(const Tensor& x, int64_t begin, int64_t count) {
  const int64_t rows = x.size(0), cols = x.size(1);
  Tensor out = Tensor::empty({rows, count});
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t c = 0; c < count; ++c) {
      out.data<float>()[r * count + c] = x.data<float>()[r * cols + begin + c];
    }
  }
  return out;
}

TEST(TpGroup, OneRankNeedsNoCommunicatorAndASplitNeedsOne) {
  const TpGroup single = make_tp_group(nullptr, 0, 1);
  EXPECT_FALSE(single.split());
  Tensor x = Tensor::full({3}, 2.0f);
  tp_all_reduce(single, x);  // no-op
  EXPECT_EQ(x.data<float>()[0], 2.0f);
  EXPECT_THROW(make_tp_group(nullptr, 0, 2), UserError);
  testing::WorldGroup group;
  EXPECT_THROW(make_tp_group(group.comm.get(), group.rank(), group.size() + 1), UserError);
}

TEST(TpGroup, PackedAllReduceSumsEveryTensorAndCountsOneMessage) {
  testing::WorldGroup group;
  TpTraffic traffic;
  const TpGroup tp = make_tp_group(group.comm.get(), group.rank(), group.size(), &traffic);
  Tensor a = Tensor::full({2, 3}, static_cast<float>(group.rank() + 1));
  Tensor b = Tensor::full({4}, static_cast<float>(10 * (group.rank() + 1)));
  tp_all_reduce_packed(tp, {&a, &b});
  const float n = static_cast<float>(group.size());
  EXPECT_EQ(a.data<float>()[5], n * (n + 1) / 2);
  EXPECT_EQ(b.data<float>()[3], 10 * n * (n + 1) / 2);
  EXPECT_EQ(traffic.all_reduces, 1);
  EXPECT_EQ(traffic.elements, 10);
}

TEST(VocabParallel, EmbeddingSlicesSumToTheFullLookupAndScatterTheirOwnRows) {
  testing::WorldGroup group;
  const TpGroup tp = make_tp_group(group.comm.get(), group.rank(), group.size());
  const int64_t V = 16 * group.size(), H = 5, Vl = V / group.size();
  const Tensor table = random_tensor({V, H}, 3, 1.0f);
  const Tensor ids = Tensor::from_ints({0, 7, static_cast<int32_t>(V - 1), 3, 7, 12, 9, 1}, {8});
  Tensor expected = Tensor::empty({8, H});
  ops::embedding_forward(ids, table, expected);

  const int64_t begin = group.rank() * Vl;
  const Tensor local_table = table.narrow(begin, begin + Vl).clone();
  Tensor out = Tensor::empty({8, H});
  vocab_parallel_embedding_local(ids, local_table, begin, out);
  tp_leave_forward(tp, out);
  EXPECT_EQ(relative_error(out, expected), 0.0);

  const Tensor dout = random_tensor({8, H}, 4, 1.0f);
  Tensor full_grad = Tensor::zeros({V, H});
  ops::embedding_backward_weight(ids, dout, full_grad);
  Tensor local_grad = Tensor::zeros({Vl, H});
  vocab_parallel_embedding_backward_weight(ids, dout, begin, local_grad);
  const Tensor expected_local = full_grad.narrow(begin, begin + Vl);
  EXPECT_EQ(relative_error(local_grad, expected_local), 0.0);
}

TEST(VocabParallel, CrossEntropyMatchesTheFullRowWithoutGatheringIt) {
  testing::WorldGroup group;
  TpTraffic traffic;
  const TpGroup tp = make_tp_group(group.comm.get(), group.rank(), group.size(), &traffic);
  const int64_t T = 7, V = 12 * group.size(), Vl = V / group.size();
  // Large logits so the max subtraction matters; targets owned by the first and last rank,
  // in the middle, and one ignored.
  const Tensor logits = random_tensor({T, V}, 5, 8.0f);
  const Tensor targets =
      Tensor::from_ints({0, static_cast<int32_t>(V - 1), ops::kIgnoreIndex, 5,
                         static_cast<int32_t>(Vl), 17, static_cast<int32_t>(V / 2)},
                        {T});
  Tensor lse = Tensor::empty({T});
  const ops::CrossEntropyResult expected = ops::cross_entropy_forward(logits, targets, lse);
  Tensor dlogits = Tensor::empty({T, V});
  ops::cross_entropy_backward(logits, targets, lse, 0.25f, dlogits);

  const int64_t begin = group.rank() * Vl;
  const Tensor local = column_block(logits, begin, Vl);
  Tensor local_lse = Tensor::empty({T});
  const ops::CrossEntropyResult got =
      vocab_parallel_cross_entropy_forward(tp, local, targets, begin, local_lse);
  EXPECT_EQ(got.tokens, expected.tokens);
  EXPECT_NEAR(got.loss_sum, expected.loss_sum, 1e-6 * expected.loss_sum);
  EXPECT_LE(relative_error(local_lse, lse), 1e-7);
  EXPECT_EQ(traffic.all_reduces, 2);  // max, then the packed (Σ exp, target logit)
  EXPECT_EQ(traffic.elements, 3 * T);

  Tensor local_d = Tensor::empty({T, Vl});
  vocab_parallel_cross_entropy_backward(local, targets, local_lse, begin, 0.25f, local_d);
  EXPECT_LE(relative_error(local_d, column_block(dlogits, begin, Vl)), 1e-6);
}

}  // namespace
}  // namespace trident::parallel::tp
