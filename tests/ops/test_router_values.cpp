// Router selection and weights on hand-made examples; the permutation plan and its round trip.
#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "gradient_check.h"
#include "ops/cpu/router.h"

namespace trident::ops::testing {
namespace {

using namespace trident::ops::cpu;

struct Routed {
  std::vector<float> indices;
  std::vector<float> weights;
  std::vector<float> scores;
};

float logit(double probability) {
  return static_cast<float>(std::log(probability / (1 - probability)));
}

Routed route(const RouterSettings& settings, const std::vector<float>& logits,
             const std::vector<float>& bias) {
  const int64_t tokens = static_cast<int64_t>(logits.size()) / settings.experts;
  Tensor indices = Tensor::empty({tokens, settings.top_k}, DType::I32);
  Tensor weights = Tensor::empty({tokens, settings.top_k});
  Tensor scores = Tensor::empty({tokens, settings.experts});
  router_forward(settings, Tensor::from_vector(logits, {tokens, settings.experts}),
                 Tensor::from_vector(bias, {settings.experts}), indices, weights, scores);
  return {indices.to_vector(), weights.to_vector(), scores.to_vector()};
}

std::vector<float> sigmoid_logits(const std::vector<double>& probabilities) {
  std::vector<float> out;
  for (double p : probabilities) out.push_back(logit(p));
  return out;
}

TEST(Router, GroupLimitChangesTheChoice) {
  // Groups of two: {0.9, 0.1} sums to 1.0, {0.6, 0.62} to 1.22, {0.55, 0.56} to 1.11,
  // {0.3, 0.2} to 0.5. Expert 0 has the best score but its group is not among the best two.
  const std::vector<float> logits = sigmoid_logits({0.9, 0.1, 0.6, 0.62, 0.55, 0.56, 0.3, 0.2});
  RouterSettings settings;
  settings.experts = 8;
  settings.top_k = 2;
  settings.scaling = 2.5f;
  const Routed plain = route(settings, logits, std::vector<float>(8, 0.0f));
  EXPECT_EQ(plain.indices, (std::vector<float>{0, 3}));
  settings.n_group = 4;
  settings.topk_group = 2;
  const Routed grouped = route(settings, logits, std::vector<float>(8, 0.0f));
  EXPECT_EQ(grouped.indices, (std::vector<float>{3, 2}));
  EXPECT_NEAR(grouped.weights[0], 0.62 / 1.22 * 2.5, 1e-6);
  EXPECT_NEAR(grouped.weights[1], 0.60 / 1.22 * 2.5, 1e-6);
}

// DeepSeek-V2's group_limited_greedy scores a group by its best expert (group_top = 1): the same
// scores keep the groups of 0.9 and 0.62 instead of those of 1.22 and 1.11.
TEST(Router, GroupScoredByItsBestExpert) {
  const std::vector<float> logits = sigmoid_logits({0.9, 0.1, 0.6, 0.62, 0.55, 0.56, 0.3, 0.2});
  const RouterSettings settings{.experts = 8,
                                .top_k = 2,
                                .n_group = 4,
                                .topk_group = 2,
                                .group_top = 1,
                                .scaling = 1.5f,
                                .normalize = false};
  const Routed best = route(settings, logits, std::vector<float>(8, 0.0f));
  EXPECT_EQ(best.indices, (std::vector<float>{0, 3}));
  EXPECT_NEAR(best.weights[0], 0.9 * 1.5, 1e-6);  // not normalised: score × scaling
  EXPECT_NEAR(best.weights[1], 0.62 * 1.5, 1e-6);
}

TEST(Router, BiasChangesSelectionButNotWeights) {
  RouterSettings settings;
  settings.experts = 4;
  settings.top_k = 2;
  const std::vector<float> logits = sigmoid_logits({0.8, 0.7, 0.6, 0.5});
  const Routed unbiased = route(settings, logits, {0, 0, 0, 0});
  EXPECT_EQ(unbiased.indices, (std::vector<float>{0, 1}));
  EXPECT_NEAR(unbiased.weights[0], 0.8 / 1.5, 1e-6);
  // Biased scores 0.8, 0.7, 0.9, 0.5: expert 2 now comes first, weights use the raw 0.6.
  const Routed biased = route(settings, logits, {0, 0, 0.3f, 0});
  EXPECT_EQ(biased.indices, (std::vector<float>{2, 0}));
  EXPECT_NEAR(biased.weights[0], 0.6 / 1.4, 1e-6);
  EXPECT_NEAR(biased.weights[1], 0.8 / 1.4, 1e-6);
  EXPECT_EQ(biased.scores, unbiased.scores);
}

TEST(Router, DroppedGroupsAreMinusInfinityNotZero) {
  // Biased scores are all negative; the second group is dropped. Masking with 0 would pick
  // the dropped experts (0 > negative); masking with −inf keeps the choice inside group 0.
  RouterSettings settings;
  settings.experts = 4;
  settings.top_k = 2;
  settings.n_group = 2;
  settings.topk_group = 1;
  const Routed routed = route(settings, sigmoid_logits({0.9, 0.8, 0.1, 0.2}), {-1, -1, -1, -1});
  EXPECT_EQ(routed.indices, (std::vector<float>{0, 1}));
}

TEST(Router, TiesGoToTheLowerIndex) {
  RouterSettings settings;
  settings.experts = 6;
  settings.top_k = 3;
  const Routed flat = route(settings, std::vector<float>(6, 0.25f), std::vector<float>(6, 0));
  EXPECT_EQ(flat.indices, (std::vector<float>{0, 1, 2}));
  settings.n_group = 3;
  settings.topk_group = 2;
  const Routed grouped = route(settings, std::vector<float>(6, 0.25f), std::vector<float>(6, 0));
  EXPECT_EQ(grouped.indices, (std::vector<float>{0, 1, 2}));
  for (float w : grouped.weights) EXPECT_NEAR(w, 1.0 / 3.0, 1e-6);
}

TEST(Router, SoftmaxAndUnnormalisedVariants) {
  RouterSettings settings;
  settings.experts = 4;
  settings.top_k = 2;
  settings.sigmoid = false;
  settings.normalize = false;
  settings.scaling = 2.0f;
  const std::vector<float> logits = {1.0f, 3.0f, 2.0f, 0.0f};
  const Routed routed = route(settings, logits, {0, 0, 0, 0});
  double sum = 0.0;
  for (float l : logits) sum += std::exp(static_cast<double>(l));
  EXPECT_EQ(routed.indices, (std::vector<float>{1, 2}));
  EXPECT_NEAR(routed.weights[0], 2.0 * std::exp(3.0) / sum, 1e-6);
  EXPECT_NEAR(routed.weights[1], 2.0 * std::exp(2.0) / sum, 1e-6);
  double total = 0.0;
  for (float s : routed.scores) total += s;
  EXPECT_NEAR(total, 1.0, 1e-6);
}

TEST(Router, RejectsSettingsThatCannotSelectTopK) {
  RouterSettings settings;
  settings.experts = 8;
  settings.top_k = 5;
  settings.n_group = 4;
  settings.topk_group = 2;  // only 4 experts reachable
  EXPECT_THROW(route(settings, std::vector<float>(8, 0), std::vector<float>(8, 0)), UserError);
}

TEST(Permute, PlanIsStableAndCountsEveryExpert) {
  // Tokens 0..3 with k = 2; expert 1 and 4 receive nothing.
  const Tensor indices = Tensor::from_ints({2, 0, 0, 3, 2, 3, 0, 2}, {4, 2});
  const PermutePlan plan = make_permute_plan(indices, 5);
  EXPECT_EQ(plan.tokens, 4);
  EXPECT_EQ(plan.top_k, 2);
  EXPECT_EQ(plan.tokens_per_expert, (std::vector<int64_t>{3, 0, 3, 2, 0}));
  EXPECT_EQ(plan.row_to_token.to_vector(), (std::vector<float>{0, 1, 3, 0, 2, 3, 1, 2}));
  EXPECT_EQ(plan.slot_to_row.to_vector(), (std::vector<float>{3, 0, 1, 6, 4, 7, 2, 5}));
}

TEST(Permute, UnpermuteOfPermuteIsTheWeightedSum) {
  std::mt19937 rng(4);
  const int64_t tokens = 13, k = 3, experts = 7, dim = 10;
  std::vector<int32_t> choice;
  for (int64_t t = 0; t < tokens; ++t) {
    for (int64_t j = 0; j < k; ++j)
      choice.push_back(static_cast<int32_t>((t * 5 + j * 2) % experts));
  }
  const PermutePlan plan = make_permute_plan(Tensor::from_ints(choice, {tokens, k}), experts);
  const Tensor x = random_tensor({tokens, dim}, rng);
  Tensor routed = Tensor::empty({tokens * k, dim});
  permute_forward(plan, x, routed);
  // Each routed row is its token's row, and each expert's block holds increasing tokens.
  const int32_t* row_to_token = plan.row_to_token.data<int32_t>();
  int64_t row = 0;
  for (int64_t e = 0; e < experts; ++e) {
    for (int64_t i = 0; i < plan.tokens_per_expert[static_cast<size_t>(e)]; ++i, ++row) {
      const int64_t token = row_to_token[row];
      if (i > 0) {
        EXPECT_LT(row_to_token[row - 1], token);
      }
      EXPECT_EQ(relative_error(routed.narrow(row, row + 1), x.narrow(token, token + 1)), 0.0);
    }
  }
  Tensor weights = Tensor::full({tokens, k}, 1.0f / 3.0f);
  Tensor back = Tensor::empty({tokens, dim});
  unpermute_forward(plan, routed, weights, back);
  EXPECT_LT(relative_error(back, x), 1e-6);
  // permute_backward sums the k copies: with accumulate it adds to what is there.
  Tensor dx = x.clone();
  permute_backward(plan, routed, dx, /*accumulate=*/true);
  Tensor expected = x.clone();
  for (int64_t i = 0; i < expected.numel(); ++i) expected.data<float>()[i] *= 1.0f + k;
  EXPECT_LT(relative_error(dx, expected), 1e-6);
}

}  // namespace
}  // namespace trident::ops::testing
