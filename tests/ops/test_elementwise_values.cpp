// Embedding, RMSNorm, SwiGLU, vector updates and cross-entropy against naive fp64 formulas.
#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "gradient_check.h"
#include "ops/cpu/cross_entropy.h"
#include "ops/cpu/elementwise.h"

namespace trident::ops::testing {
namespace {

using namespace trident::ops::cpu;

TEST(Embedding, LooksUpRowsAndScatterAddsRepeatedIds) {
  std::mt19937 rng(1);
  const Tensor table = random_tensor({5, 70}, rng);  // wider than one 64-column block
  const Tensor ids = Tensor::from_ints({4, 1, 4, 4}, {4});
  for (DType type : {DType::F32, DType::BF16}) {
    const Tensor stored = table.to(type);
    Tensor out = Tensor::empty({4, 70});
    embedding_forward(ids, stored, out);
    for (int64_t t = 0; t < 4; ++t) {
      const int64_t id = static_cast<int64_t>(ids.item(t));
      EXPECT_EQ(relative_error(out.narrow(t, t + 1), stored.to(DType::F32).narrow(id, id + 1)),
                0.0);
    }
  }
  const Tensor dout = random_tensor({4, 70}, rng);
  Tensor dtable = Tensor::full({5, 70}, 1.0f);
  embedding_backward_weight(ids, dout, dtable);
  for (int64_t c = 0; c < 70; ++c) {
    EXPECT_FLOAT_EQ(dtable.item(4 * 70 + c),
                    1.0f + dout.item(c) + dout.item(2 * 70 + c) + dout.item(3 * 70 + c));
    EXPECT_FLOAT_EQ(dtable.item(1 * 70 + c), 1.0f + dout.item(70 + c));
    EXPECT_EQ(dtable.item(0 * 70 + c), 1.0f);
  }
  Tensor bad = Tensor::empty({1, 70});
  EXPECT_THROW(embedding_forward(Tensor::from_ints({5}, {1}), table, bad), Error);
}

TEST(RmsNorm, ForwardMatchesFormulaAndBackwardAccumulates) {
  std::mt19937 rng(2);
  const int64_t tokens = 4, dim = 33;
  const float eps = 1e-5f;
  const Tensor x = random_tensor({tokens, dim}, rng, 3.0f);
  const Tensor w = random_tensor({dim}, rng);
  Tensor y = Tensor::empty({tokens, dim});
  Tensor rstd = Tensor::empty({tokens});
  rmsnorm_forward(x, w.to(DType::BF16), eps, y, rstd);
  const Tensor w_rounded = w.to(DType::BF16).to(DType::F32);
  Tensor expected = Tensor::empty({tokens, dim});
  for (int64_t t = 0; t < tokens; ++t) {
    double sum = 0.0;
    for (int64_t c = 0; c < dim; ++c) sum += std::pow(x.item(t * dim + c), 2.0);
    const double r = 1.0 / std::sqrt(sum / dim + eps);
    EXPECT_NEAR(rstd.item(t), r, 1e-6 * r);
    for (int64_t c = 0; c < dim; ++c) {
      expected.data<float>()[t * dim + c] =
          static_cast<float>(x.item(t * dim + c) * r * w_rounded.item(c));
    }
  }
  EXPECT_LT(relative_error(y, expected), 1e-6);

  const Tensor dy = random_tensor({tokens, dim}, rng);
  Tensor fresh = Tensor::empty({tokens, dim});
  rmsnorm_backward_input(dy, x, w, rstd, fresh);
  const Tensor prior = random_tensor({tokens, dim}, rng);
  Tensor accumulated = prior.clone();
  rmsnorm_backward_input(dy, x, w, rstd, accumulated, /*accumulate=*/true);
  EXPECT_LT(relative_error(subtract(accumulated, prior), fresh), 1e-6);
}

TEST(SwiGlu, ForwardMatchesFormula) {
  const Tensor gate = Tensor::from_vector({-30.0f, -1.0f, 0.0f, 2.0f, 30.0f}, {1, 5});
  const Tensor up = Tensor::from_vector({2.0f, 3.0f, 4.0f, -1.0f, 0.5f}, {1, 5});
  Tensor out = Tensor::empty({1, 5});
  swiglu_forward(gate, up, out);
  for (int64_t i = 0; i < 5; ++i) {
    const double g = gate.item(i);
    EXPECT_NEAR(out.item(i), g / (1.0 + std::exp(-g)) * up.item(i), 1e-6 * (1 + std::abs(g)));
  }
}

TEST(VectorUpdates, AxpyAndScale) {
  const Tensor x = Tensor::from_vector({1.0f, -2.0f, 3.0f}, {3});
  Tensor y = Tensor::from_vector({0.5f, 0.5f, 0.5f}, {3});
  axpy(2.0f, x, y);
  EXPECT_EQ(y.to_vector(), (std::vector<float>{2.5f, -3.5f, 6.5f}));
  scale(x, -0.5f, y);
  EXPECT_EQ(y.to_vector(), (std::vector<float>{-0.5f, 1.0f, -1.5f}));
}

TEST(ColumnCopy, CopiesAndAccumulatesColumnsBetweenWidths) {
  // src [3, 5] = 10·r + c; columns 1…3 go to columns 2…4 of dst [3, 6].
  Tensor src = Tensor::empty({3, 5});
  for (int64_t i = 0; i < src.numel(); ++i)
    src.data<float>()[i] = static_cast<float>(10 * (i / 5) + i % 5);
  Tensor dst = Tensor::zeros({3, 6});
  dst.data<float>()[0] = -1.0f;  // a column outside the range: left alone
  copy_columns(src, 5, 1, dst, 6, 2, 3);
  copy_columns(src, 5, 1, dst, 6, 2, 3, /*accumulate=*/true);
  for (int64_t r = 0; r < 3; ++r) {
    for (int64_t c = 0; c < 6; ++c) {
      const bool copied = c >= 2 && c < 5;
      const float expected =
          copied ? 2.0f * static_cast<float>(10 * r + c - 1) : (r == 0 && c == 0 ? -1.0f : 0.0f);
      EXPECT_EQ(dst.data<float>()[r * 6 + c], expected) << "row " << r << ", column " << c;
    }
  }
  // Ranges outside the rows and tensors of different row counts are refused.
  EXPECT_THROW(copy_columns(src, 5, 3, dst, 6, 0, 3), Error);
  EXPECT_THROW(copy_columns(src, 5, 0, dst, 6, 4, 3), Error);
  Tensor four_rows = Tensor::zeros({4, 6});
  EXPECT_THROW(copy_columns(src, 5, 0, four_rows, 6, 0, 3), Error);
}

TEST(CrossEntropy, IgnoreIndexAndStableLogSumExp) {
  std::mt19937 rng(3);
  const int64_t tokens = 6, vocab = 9;
  Tensor logits = random_tensor({tokens, vocab}, rng, 4.0f);
  for (int64_t c = 0; c < vocab; ++c) logits.data<float>()[5 * vocab + c] += 1.0e4f;  // huge row
  const std::vector<int32_t> target_values = {3, kIgnoreIndex, 0, 8, kIgnoreIndex, 2};
  const Tensor targets = Tensor::from_ints(target_values, {tokens});
  Tensor lse = Tensor::empty({tokens});
  const CrossEntropyResult result = cross_entropy_forward(logits, targets, lse);
  EXPECT_EQ(result.tokens, 4);
  double expected_loss = 0.0;
  std::vector<double> logprob(tokens, 0.0);
  for (int64_t t = 0; t < tokens; ++t) {
    double max_logit = -1e300;
    for (int64_t c = 0; c < vocab; ++c)
      max_logit = std::max<double>(max_logit, logits.item(t * vocab + c));
    double sum = 0.0;
    for (int64_t c = 0; c < vocab; ++c) sum += std::exp(logits.item(t * vocab + c) - max_logit);
    const double row_lse = max_logit + std::log(sum);
    EXPECT_NEAR(lse.item(t), row_lse, 1e-6 * std::abs(row_lse) + 1e-6);
    const int32_t target = target_values[static_cast<size_t>(t)];
    if (target == kIgnoreIndex) continue;
    logprob[static_cast<size_t>(t)] = logits.item(t * vocab + target) - row_lse;
    expected_loss -= logprob[static_cast<size_t>(t)];
  }
  EXPECT_TRUE(std::isfinite(result.loss_sum));
  EXPECT_NEAR(result.loss_sum, expected_loss, 2e-3);  // the 1e4 row carries fp32 rounding

  Tensor logprobs = Tensor::empty({tokens});
  token_logprobs(logits, targets, logprobs);
  for (int64_t t = 0; t < tokens; ++t) {
    EXPECT_NEAR(logprobs.item(t), logprob[static_cast<size_t>(t)], 2e-3) << "token " << t;
  }
  EXPECT_EQ(logprobs.item(1), 0.0f);

  Tensor dlogits = Tensor::full({tokens, vocab}, 9.0f);
  cross_entropy_backward(logits, targets, lse, 0.25f, dlogits);
  for (int64_t t = 0; t < tokens; ++t) {
    double row_sum = 0.0;
    for (int64_t c = 0; c < vocab; ++c) row_sum += dlogits.item(t * vocab + c);
    // softmax − onehot sums to zero; ignored rows are zero. The 1e4 row sees the fp32
    // rounding of its saved logsumexp (~1e4 · 2^-24 in the exponent).
    EXPECT_NEAR(row_sum, 0.0, t == 5 ? 1e-3 * 0.25 : 1e-6) << "token " << t;
    if (target_values[static_cast<size_t>(t)] == kIgnoreIndex) {
      for (int64_t c = 0; c < vocab; ++c) EXPECT_EQ(dlogits.item(t * vocab + c), 0.0f);
    } else {
      EXPECT_LT(dlogits.item(t * vocab + target_values[static_cast<size_t>(t)]), 0.0f);
    }
  }
  EXPECT_THROW(cross_entropy_forward(logits, Tensor::from_ints({0, 0, 0, 0, 0, 9}, {tokens}), lse),
               Error);
}

// GRPO's token scores against the formulas in double, and their gradient against central
// differences of Σ_t w_t · log p(target_t).
TEST(CrossEntropyValues, TokenScoresAndTheirGradient) {
  std::mt19937 rng(5);
  const int64_t tokens = 5, vocab = 7;
  const Tensor logits = random_tensor({tokens, vocab}, rng, 2.0f);
  const std::vector<int32_t> target_values = {3, kIgnoreIndex, 0, 6, 2};
  const Tensor targets = Tensor::from_ints(target_values, {tokens});
  const auto row_of = [&](const std::vector<double>& values, int64_t t) {
    return std::vector<double>(values.begin() + t * vocab, values.begin() + (t + 1) * vocab);
  };
  const auto logprob = [&](const std::vector<double>& row, int32_t target) {
    double max = -1e300, sum = 0.0;
    for (const double x : row) max = std::max(max, x);
    for (const double x : row) sum += std::exp(x - max);
    return row[static_cast<size_t>(target)] - (max + std::log(sum));
  };
  std::vector<double> values(static_cast<size_t>(tokens * vocab));
  for (size_t i = 0; i < values.size(); ++i) values[i] = logits.item(static_cast<int64_t>(i));

  const std::vector<TokenScore> scores = token_scores(logits, targets);
  ASSERT_EQ(scores.size(), static_cast<size_t>(tokens));
  for (int64_t t = 0; t < tokens; ++t) {
    const int32_t target = target_values[static_cast<size_t>(t)];
    if (target == kIgnoreIndex) {
      EXPECT_EQ(scores[static_cast<size_t>(t)].logprob, 0.0);
      EXPECT_EQ(scores[static_cast<size_t>(t)].entropy, 0.0);
      continue;
    }
    const std::vector<double> row = row_of(values, t);
    double entropy = 0.0;
    for (int32_t v = 0; v < vocab; ++v) entropy -= std::exp(logprob(row, v)) * logprob(row, v);
    EXPECT_NEAR(scores[static_cast<size_t>(t)].logprob, logprob(row, target), 1e-12);
    EXPECT_NEAR(scores[static_cast<size_t>(t)].entropy, entropy, 1e-12);
  }

  const std::vector<double> weights = {0.7, 0.4, 0.0, -1.3, 0.25};  // token 1 ignored, 2 weightless
  Tensor dlogits = Tensor::full({tokens, vocab}, 9.0f);
  token_logprobs_backward(logits, targets, weights, dlogits);
  for (int64_t t = 0; t < tokens; ++t) {
    const int32_t target = target_values[static_cast<size_t>(t)];
    for (int64_t v = 0; v < vocab; ++v) {
      double expected = 0.0;
      if (target != kIgnoreIndex) {
        constexpr double kStep = 1e-6;
        std::vector<double> up = row_of(values, t), down = up;
        up[static_cast<size_t>(v)] += kStep;
        down[static_cast<size_t>(v)] -= kStep;
        expected = weights[static_cast<size_t>(t)] * (logprob(up, target) - logprob(down, target)) /
                   (2 * kStep);
      }
      EXPECT_NEAR(dlogits.item(t * vocab + v), expected, 1e-6) << "token " << t << ", logit " << v;
    }
  }
  EXPECT_THROW(token_logprobs_backward(logits, targets, {1.0, 2.0}, dlogits), Error);
}

}  // namespace
}  // namespace trident::ops::testing
