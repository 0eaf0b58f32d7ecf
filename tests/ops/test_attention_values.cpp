// Attention forward against a naive fp64 causal softmax.
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <sstream>

#include "gradient_check.h"
#include "ops/cpu/attention.h"

namespace trident::ops::testing {
namespace {

using namespace trident::ops::cpu;

struct NaiveAttention {
  Tensor out;
  Tensor lse;
};

NaiveAttention naive_attention(const AttentionShape& s, const Tensor& q, const Tensor& k,
                               const Tensor& v) {
  NaiveAttention result{Tensor::empty({s.batch * s.seq, s.heads, s.v_dim}),
                        Tensor::empty({s.batch, s.heads, s.seq})};
  auto qk_at = [&](const Tensor& t, int64_t b, int64_t i, int64_t h, int64_t c) {
    return static_cast<double>(t.item(((b * s.seq + i) * s.heads + h) * s.qk_dim + c));
  };
  for (int64_t b = 0; b < s.batch; ++b) {
    for (int64_t h = 0; h < s.heads; ++h) {
      for (int64_t i = 0; i < s.seq; ++i) {
        std::vector<double> score(static_cast<size_t>(i + 1));
        double max_score = -1e300;
        for (int64_t j = 0; j <= i; ++j) {
          double dot = 0.0;
          for (int64_t c = 0; c < s.qk_dim; ++c) dot += qk_at(q, b, i, h, c) * qk_at(k, b, j, h, c);
          score[static_cast<size_t>(j)] = dot * s.scale;
          max_score = std::max(max_score, dot * s.scale);
        }
        double sum = 0.0;
        for (double& value : score) sum += (value = std::exp(value - max_score));
        result.lse.data<float>()[(b * s.heads + h) * s.seq + i] =
            static_cast<float>(max_score + std::log(sum));
        for (int64_t c = 0; c < s.v_dim; ++c) {
          double acc = 0.0;
          for (int64_t j = 0; j <= i; ++j) {
            acc += score[static_cast<size_t>(j)] / sum *
                   v.item(((b * s.seq + j) * s.heads + h) * s.v_dim + c);
          }
          result.out.data<float>()[((b * s.seq + i) * s.heads + h) * s.v_dim + c] =
              static_cast<float>(acc);
        }
      }
    }
  }
  return result;
}

class AttentionValues : public ::testing::TestWithParam<AttentionShape> {};

TEST_P(AttentionValues, ForwardMatchesNaiveSoftmax) {
  AttentionShape s = GetParam();
  std::mt19937 rng(static_cast<uint32_t>(s.seq));
  const int64_t tokens = s.batch * s.seq;
  const Tensor q = random_tensor({tokens, s.heads, s.qk_dim}, rng, 2.0f);
  const Tensor k = random_tensor({tokens, s.heads, s.qk_dim}, rng, 2.0f);
  const Tensor v = random_tensor({tokens, s.heads, s.v_dim}, rng);
  Tensor out = Tensor::empty({tokens, s.heads, s.v_dim});
  Tensor lse = Tensor::empty({s.batch, s.heads, s.seq});
  attention_forward(s, q, k, v, out, lse);
  const NaiveAttention expected = naive_attention(s, q, k, v);
  EXPECT_LT(relative_error(out, expected.out), 1e-5);
  EXPECT_LT(relative_error(lse, expected.lse), 1e-6);
}

INSTANTIATE_TEST_SUITE_P(
    Shapes, AttentionValues,
    ::testing::Values(AttentionShape{1, 1, 1, 3, 2, 0.5f}, AttentionShape{2, 9, 3, 5, 4, 0.4f},
                      AttentionShape{2, 130, 2, 6, 3, 0.35f},  // three query blocks
                      AttentionShape{1, 257, 1, 24, 16, 0.2f},
                      AttentionShape{2, 70, 2, 72, 66, 0.1f}),  // wide heads: sgemm
    [](const ::testing::TestParamInfo<AttentionShape>& shape_info) {
      const AttentionShape& s = shape_info.param;
      std::ostringstream name;
      name << "B" << s.batch << "_S" << s.seq << "_H" << s.heads << "_Dqk" << s.qk_dim << "_Dv"
           << s.v_dim;
      return name.str();
    });

TEST(Attention, LaterTokensDoNotChangeEarlierOutputs) {
  const AttentionShape s{1, 140, 2, 4, 4, 0.5f};
  std::mt19937 rng(8);
  Tensor q = random_tensor({s.seq, s.heads, s.qk_dim}, rng);
  Tensor k = random_tensor({s.seq, s.heads, s.qk_dim}, rng);
  Tensor v = random_tensor({s.seq, s.heads, s.v_dim}, rng);
  Tensor out1 = Tensor::empty({s.seq, s.heads, s.v_dim});
  Tensor out2 = Tensor::empty({s.seq, s.heads, s.v_dim});
  Tensor lse = Tensor::empty({1, s.heads, s.seq});
  attention_forward(s, q, k, v, out1, lse);
  const int64_t cut = 100;
  for (int64_t i = cut * s.heads * s.qk_dim; i < k.numel(); ++i) {
    k.data<float>()[i] += 3.0f;
    q.data<float>()[i] -= 1.0f;
  }
  for (int64_t i = cut * s.heads * s.v_dim; i < v.numel(); ++i) v.data<float>()[i] *= -2.0f;
  attention_forward(s, q, k, v, out2, lse);
  EXPECT_EQ(relative_error(out1.narrow(0, cut), out2.narrow(0, cut)), 0.0);
  EXPECT_GT(relative_error(out1.narrow(cut, s.seq), out2.narrow(cut, s.seq)), 0.1);
}

}  // namespace
}  // namespace trident::ops::testing
