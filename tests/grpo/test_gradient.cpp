// The gradient of the GRPO loss (clipped surrogate + k3 KL, grpo aggregation) through
// log-softmax, the head and the whole model, against central finite differences.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>

#include "runtime/core/rng.h"
#include "runtime/io/tokenizer.h"
#include "runtime/train/grpo/loss.h"
#include "runtime/train/grpo/policy.h"
#include "runtime/train/grpo/scoring.h"
#include "tests/grpo/grpo_test_model.h"

namespace trident::train::grpo {
namespace {

struct Problem {
  std::vector<ScoredRow> rows;
  std::vector<double> advantages;
  std::vector<std::vector<double>> old_logp, ref_logp;
  std::vector<double> coef;
  ObjectiveOptions objective;
};

struct LossEval {
  double loss = 0.0;
  std::vector<std::vector<int32_t>> routing;
  int64_t clipped = 0;
};

LossEval evaluate(models::DeepSeekV3Model& model, const Problem& p, bool backward) {
  const RowBatch batch = make_row_batch(p.rows);
  PolicyForward fwd;
  policy_forward(model, batch.ids, batch.batch, batch.seq, fwd);
  const CompletionScores now = completion_scores(fwd.logits, batch, p.rows);
  LossEval out;
  std::vector<std::vector<int32_t>> tokens;
  std::vector<std::vector<double>> dlogp(p.rows.size());
  for (size_t i = 0; i < p.rows.size(); ++i) {
    tokens.push_back(p.rows[i].completion);
    for (size_t t = 0; t < p.rows[i].completion.size(); ++t) {
      const TokenObjective obj = token_objective(now.logp[i][t], p.old_logp[i][t], p.ref_logp[i][t],
                                                 p.advantages[i], p.objective);
      out.loss -= p.coef[i] * obj.value;
      out.clipped += obj.clipped ? 1 : 0;
      dlogp[i].push_back(-p.coef[i] * obj.dlogp);
    }
  }
  for (const models::DecoderLayerContext& layer : fwd.layers) {
    if (!layer.moe.indices.defined()) continue;
    const int32_t* idx = layer.moe.indices.data<int32_t>();
    out.routing.emplace_back(idx, idx + layer.moe.indices.numel());
  }
  if (backward)
    policy_backward(model, completion_logit_grad(fwd.logits, batch, tokens, dlogp), fwd);
  return out;
}

TEST(GrpoGradient, MatchesFiniteDifferences) {
  models::DeepSeekV3Model model(testing::grpo_tiny_config(), 2024);
  Problem p;
  p.rows = {{io::ByteTokenizer::encode("12+3="), io::ByteTokenizer::encode("<t>15")},
            {io::ByteTokenizer::encode("12+3="), io::ByteTokenizer::encode("99</a")},
            {io::ByteTokenizer::encode("7+8="), io::ByteTokenizer::encode("15!")}};
  p.advantages = {1.0, -0.7, 0.4};
  p.objective.beta = 0.3;
  p.objective.kl = KlEstimator::K3;
  p.objective.epsilon_low = p.objective.epsilon_high = 0.5;  // keep ρ inside the range
  const CompletionScores base = score_rows(model, p.rows);
  const CounterRng rng(5, stream_id("grpo-grad"));
  uint64_t draw = 0;
  for (size_t i = 0; i < p.rows.size(); ++i) {
    p.old_logp.emplace_back();
    p.ref_logp.emplace_back();
    for (const double logp : base.logp[i]) {
      p.old_logp.back().push_back(logp + 0.2 * (rng.uniform(draw++) - 0.5));
      p.ref_logp.back().push_back(logp + 0.6 * (rng.uniform(draw++) - 0.5));
    }
  }
  p.coef = completion_coefficients({5, 5, 3}, LossType::Grpo, 5);

  model.params().zero_grad();
  const LossEval reference = evaluate(model, p, true);
  ASSERT_TRUE(std::isfinite(reference.loss));
  ASSERT_EQ(reference.clipped, 0);

  constexpr float kStep = 2e-3f;
  std::vector<double> analytic, numeric;
  int skipped = 0;
  for (models::Parameter& param : model.params().parameters()) {
    if (!param.spec->trained) continue;
    if (param.spec->name.find("model.layers.4") == 0) continue;  // MTP: not part of the policy
    float* value = param.value.data<float>();
    const float* grad = param.grad.data<float>();
    const int64_t n = param.value.numel();
    std::vector<int64_t> entries;
    std::vector<float> signs;
    for (int k = 0; k < 4; ++k) {
      entries.push_back(static_cast<int64_t>(rng.bits(draw++) % static_cast<uint32_t>(n)));
      signs.push_back(rng.bits(draw++) % 2 == 0 ? 1.0f : -1.0f);
    }
    double directional = 0.0;
    for (size_t k = 0; k < entries.size(); ++k) directional += signs[k] * grad[entries[k]];
    const std::vector<float> saved = param.value.to_vector();
    auto shift = [&](float amount) {
      std::memcpy(value, saved.data(), saved.size() * sizeof(float));
      for (size_t k = 0; k < entries.size(); ++k) value[entries[k]] += amount * signs[k];
    };
    shift(kStep);
    const LossEval plus = evaluate(model, p, false);
    shift(-kStep);
    const LossEval minus = evaluate(model, p, false);
    std::memcpy(value, saved.data(), saved.size() * sizeof(float));
    if (plus.routing != reference.routing || minus.routing != reference.routing) {
      ++skipped;
      continue;
    }
    const double fd = (plus.loss - minus.loss) / (2.0 * kStep);
    analytic.push_back(directional);
    numeric.push_back(fd);
    EXPECT_NEAR(fd, directional, 3e-2 * std::abs(directional) + 3e-4)
        << param.spec->name << " (analytic " << directional << ", numeric " << fd << ")";
  }
  EXPECT_LE(skipped, 3);
  ASSERT_GT(analytic.size(), 50u);
  double diff = 0.0, norm = 0.0;
  for (size_t k = 0; k < analytic.size(); ++k) {
    diff += (analytic[k] - numeric[k]) * (analytic[k] - numeric[k]);
    norm += analytic[k] * analytic[k];
  }
  EXPECT_GT(norm, 0.0);
  EXPECT_LT(std::sqrt(diff / norm), 5e-3);
}

}  // namespace
}  // namespace trident::train::grpo
