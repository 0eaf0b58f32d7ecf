// Tensor-parallel vocabulary shards: the embedding and cross-entropy pieces of each shard,
// combined as parallel/tp/vocab_parallel.cpp combines them, against the whole-vocabulary ops.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <vector>

#include "gradient_check.h"
#include "ops/ops.h"

namespace trident::ops::testing {
namespace {

// Columns [begin, begin + count) of a [rows, cols] matrix.
Tensor columns(const Tensor& m, int64_t begin, int64_t count) {
  Tensor out = Tensor::empty({m.size(0), count});
  copy_columns(m, m.size(1), begin, out, count, 0, count);
  return out;
}

TEST(VocabShard, EmbeddingShardsSumToTheWholeLookup) {
  std::mt19937 rng(3);
  const Tensor table = random_tensor({6, 5}, rng);
  const Tensor ids = Tensor::from_ints({5, 0, 2, 5, 3}, {5});
  Tensor whole = Tensor::empty({5, 5});
  embedding_forward(ids, table, whole);
  Tensor sum = Tensor::zeros({5, 5});
  const Tensor dout = random_tensor({5, 5}, rng);
  Tensor whole_grad = Tensor::zeros({6, 5});
  embedding_backward_weight(ids, dout, whole_grad);
  for (const auto& [begin, count] : {std::pair<int64_t, int64_t>{0, 2}, {2, 3}, {5, 1}}) {
    const Tensor shard = table.narrow(begin, begin + count).clone();
    Tensor out = Tensor::full({5, 5}, 7.0f);  // every row is written: zeros for other shards
    embedding_forward(ids, shard, out, begin);
    axpy(1.0f, out, sum);
    Tensor grad = Tensor::zeros({count, 5});
    embedding_backward_weight(ids, dout, grad, begin);
    EXPECT_EQ(relative_error(grad, whole_grad.narrow(begin, begin + count)), 0.0);
  }
  EXPECT_EQ(relative_error(sum, whole), 0.0);
}

TEST(VocabShard, CrossEntropyPiecesCombineToTheWholeVocabulary) {
  std::mt19937 rng(4);
  const int64_t T = 5, V = 12, shard = 4;
  const Tensor logits = random_tensor({T, V}, rng);
  const Tensor targets = Tensor::from_ints({3, kIgnoreIndex, 11, 0, 7}, {T});
  Tensor whole_lse = Tensor::empty({T});
  const CrossEntropyResult whole = cross_entropy_forward(logits, targets, whole_lse);
  Tensor whole_grad = Tensor::empty({T, V});
  cross_entropy_backward(logits, targets, whole_lse, 0.25f, whole_grad);

  std::vector<float> max(T, -INFINITY);
  for (int64_t s = 0; s < V / shard; ++s) {
    Tensor m = Tensor::empty({T});
    shard_row_max(columns(logits, s * shard, shard), m);
    for (int64_t t = 0; t < T; ++t) max[t] = std::max(max[t], m.item(t));
  }
  const Tensor row_max = Tensor::from_vector(max, {T});
  std::vector<double> sum_exp(T, 0.0), target_logit(T, 0.0);
  for (int64_t s = 0; s < V / shard; ++s) {
    Tensor sums = Tensor::full({2 * T}, 9.0f);  // overwritten, the target part included
    shard_softmax_sums(columns(logits, s * shard, shard), targets, s * shard, row_max, sums);
    for (int64_t t = 0; t < T; ++t) {
      sum_exp[t] += sums.item(t);
      target_logit[t] += sums.item(T + t);
    }
  }
  double loss = 0.0;
  std::vector<float> lse(T);
  for (int64_t t = 0; t < T; ++t) {
    lse[t] = static_cast<float>(max[t] + std::log(sum_exp[t]));
    EXPECT_NEAR(lse[t], whole_lse.item(t), 1e-5);
    if (targets.item(t) != kIgnoreIndex) loss += lse[t] - target_logit[t];
  }
  EXPECT_NEAR(loss, whole.loss_sum, 1e-5);
  const Tensor shard_lse = Tensor::from_vector(lse, {T});
  for (int64_t s = 0; s < V / shard; ++s) {
    Tensor grad = Tensor::full({T, shard}, 9.0f);
    shard_cross_entropy_backward(columns(logits, s * shard, shard), targets, shard_lse, s * shard,
                                 0.25f, grad);
    EXPECT_LT(relative_error(grad, columns(whole_grad, s * shard, shard)), 1e-6) << "shard " << s;
  }
}

TEST(VocabShard, GrpoStatisticsAndGradientCombineToTheWholeVocabulary) {
  std::mt19937 rng(10);
  const int64_t T = 4, V = 12, shard = 6;
  const Tensor logits = random_tensor({T, V}, rng, 2.0f);
  const Tensor targets = Tensor::from_ints({1, 11, 6, 5}, {T});
  const std::vector<TokenScore> whole = token_scores(logits, targets);
  const std::vector<double> weights = {0.5, 0.0, -1.0, 2.0};
  Tensor whole_grad = Tensor::empty({T, V});
  token_logprobs_backward(logits, targets, weights, whole_grad);
  std::vector<float> max(T, -INFINITY);
  for (int64_t s = 0; s < V / shard; ++s) {
    Tensor m = Tensor::empty({T});
    shard_row_max(columns(logits, s * shard, shard), m);
    for (int64_t t = 0; t < T; ++t) max[t] = std::max(max[t], m.item(t));
  }
  std::vector<double> parts(3 * T, 0.0);
  for (int64_t s = 0; s < V / shard; ++s) {
    const std::vector<double> p = shard_softmax_stats(columns(logits, s * shard, shard), targets,
                                                      s * shard, Tensor::from_vector(max, {T}));
    ASSERT_EQ(p.size(), parts.size());
    for (size_t i = 0; i < p.size(); ++i) parts[i] += p[i];
  }
  std::vector<double> lse(T);
  for (int64_t t = 0; t < T; ++t) {
    lse[t] = max[t] + std::log(parts[3 * t]);
    EXPECT_NEAR(parts[3 * t + 2] - lse[t], whole[t].logprob, 1e-12) << t;
    EXPECT_NEAR(lse[t] - parts[3 * t + 1] / parts[3 * t], whole[t].entropy, 1e-12) << t;
  }
  for (int64_t s = 0; s < V / shard; ++s) {
    Tensor grad = Tensor::full({T, shard}, 9.0f);
    shard_logprob_backward(columns(logits, s * shard, shard), targets, s * shard, lse, weights,
                           grad);
    EXPECT_LT(relative_error(grad, columns(whole_grad, s * shard, shard)), 1e-6) << "shard " << s;
  }
}

TEST(VocabShard, OpsRunOnTheCpuBackendsDeviceMemory) {
  std::mt19937 rng(5);
  const Tensor logits = random_tensor({3, 4}, rng);
  Tensor host_max = Tensor::empty({3});
  shard_row_max(logits, host_max);
  Tensor device_max = Tensor::empty({3}, DType::F32, Device::CPUDevice);
  shard_row_max(logits.to(Device::CPUDevice), device_max);
  EXPECT_EQ(device_max.to_vector(), host_max.to_vector());
  EXPECT_THROW(shard_row_max(logits, device_max), Error);  // operands on two devices
}

TEST(Convert, RoundsToBf16AndWidensBack) {
  std::mt19937 rng(6);
  const Tensor x = random_tensor({37}, rng);
  Tensor narrow = Tensor::empty({37}, DType::BF16);
  convert(x, narrow);
  const Tensor expected = x.to(DType::BF16);
  for (int64_t i = 0; i < 37; ++i) {
    EXPECT_EQ(narrow.data<bf16>()[i].bits, expected.data<bf16>()[i].bits) << i;
  }
  Tensor wide = Tensor::empty({37});
  convert(narrow, wide);
  EXPECT_EQ(wide.to_vector(), narrow.to(DType::F32).to_vector());
  Tensor wrong = Tensor::empty({36});
  EXPECT_THROW(convert(x, wrong), Error);
}

}  // namespace
}  // namespace trident::ops::testing
