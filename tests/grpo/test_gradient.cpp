// The gradient of the GRPO loss (clipped surrogate + k3 KL, grpo aggregation) as the step
// engine computes it (one rank, the policy objective of a training pass) through log-softmax,
// the head and the whole model, against central finite differences of the same loss computed
// directly from the model's blocks; at T = 1 and at a sampling temperature T ≠ 1, where the
// objective scores the tempered distribution softmax(logits / T).
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>

#include "models/deepseek_v3/parallelize/pipeline_partition.h"
#include "ops/ops.h"
#include "parallel/context.h"
#include "runtime/config/config.h"
#include "runtime/core/rng.h"
#include "runtime/io/tokenizer.h"
#include "runtime/train/grpo/loss.h"
#include "runtime/train/grpo/policy_objective.h"
#include "runtime/train/grpo/scoring.h"
#include "runtime/train/grpo/staged_decoder.h"
#include "runtime/train/model_stage_compute.h"
#include "runtime/train/step_engine.h"
#include "tests/grpo/grpo_test_model.h"
#include "tests/support/directional_difference.h"

namespace trident::train::grpo {
namespace {

struct Problem {
  std::vector<ScoredRow> rows;
  std::vector<double> advantages;
  std::vector<std::vector<double>> old_logp, ref_logp;
  std::vector<double> coef;
  ObjectiveOptions objective;
  double temperature = 1.0;
};

// The scores of the rows under the tempered distribution, from the model's blocks.
CompletionScores tempered_scores(models::DeepSeekV3Model& model, const std::vector<ScoredRow>& rows,
                                 double temperature,
                                 std::vector<models::DecoderLayerContext>& layers) {
  const RowBatch batch = make_row_batch(rows);
  const models::SequenceLayout layout = model.sequence_layout(batch.batch, batch.seq);
  const Tensor h = model.forward_layers(0, model.num_layers(), model.embedding().forward(batch.ids),
                                        layout, 0.0f, layers);
  Tensor logits = head_logits(model, h);
  ops::scale(logits, static_cast<float>(1.0 / temperature), logits);
  return completion_scores(logits, batch, rows);
}

struct LossEval {
  double loss = 0.0;
  std::vector<std::vector<int32_t>> routing;
  int64_t clipped = 0;
};

// The loss of the problem from the model's blocks, and the routing of every MoE layer.
LossEval evaluate(models::DeepSeekV3Model& model, const Problem& p) {
  std::vector<models::DecoderLayerContext> layers;
  const CompletionScores now = tempered_scores(model, p.rows, p.temperature, layers);
  LossEval out;
  for (size_t i = 0; i < p.rows.size(); ++i) {
    for (size_t t = 0; t < p.rows[i].completion.size(); ++t) {
      const TokenObjective obj = token_objective(now.logp[i][t], p.old_logp[i][t], p.ref_logp[i][t],
                                                 p.advantages[i], p.objective);
      out.loss -= p.coef[i] * obj.value;
      out.clipped += obj.clipped ? 1 : 0;
    }
  }
  for (const models::DecoderLayerContext& layer : layers) {
    if (!layer.moe.indices.defined()) continue;
    const int32_t* idx = layer.moe.indices.data<int32_t>();
    out.routing.emplace_back(idx, idx + layer.moe.indices.numel());
  }
  return out;
}

// The gradient of the problem's loss through the step engine: one training pass of one
// micro-batch (the rows) with the policy objective; returns the objective's loss.
double engine_backward(models::DeepSeekV3Model& model, const Problem& p) {
  const config::ParallelConfig parallel = config::default_config().parallel();
  const models::parallelize::PipelinePartition partition =
      models::parallelize::pipeline_partition(model.config(), parallel);
  StepEngine engine(parallel, parallel::ParallelContext::one_rank(), partition);
  ModelStageCompute compute(model, partition, 0);
  CompletionScores old_scores, ref_scores;
  old_scores.logp = p.old_logp;
  ref_scores.logp = p.ref_logp;
  std::vector<GroupBatch> pass(1);
  pass[0].source = p.rows;
  pass[0].rows = make_row_batch(p.rows);
  pass[0].advantages = p.advantages;
  pass[0].coefficients = p.coef;
  pass[0].old_scores = &old_scores;
  pass[0].ref_scores = &ref_scores;
  PolicyObjective objective(model, p.objective, p.temperature);
  objective.begin_pass(pass);
  const std::vector<StageInput> inputs = stage_inputs(pass);
  compute.begin_step(inputs, objective, 0.0f);
  engine.train(compute, 1, {});
  return -objective.sums().objective;
}

void expect_gradient_matches_finite_differences(double temperature) {
  models::DeepSeekV3Model model(testing::grpo_tiny_config(), 2024);
  Problem p;
  p.temperature = temperature;
  p.rows = {{io::ByteTokenizer::encode("12+3="), io::ByteTokenizer::encode("<t>15")},
            {io::ByteTokenizer::encode("12+3="), io::ByteTokenizer::encode("99</a")},
            {io::ByteTokenizer::encode("7+8="), io::ByteTokenizer::encode("15!")}};
  p.advantages = {1.0, -0.7, 0.4};
  p.objective.beta = 0.3;
  p.objective.kl = KlEstimator::K3;
  p.objective.epsilon_low = p.objective.epsilon_high = 0.5;  // keep ρ inside the range
  std::vector<models::DecoderLayerContext> layers;
  const CompletionScores base = tempered_scores(model, p.rows, temperature, layers);
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
  const double engine_loss = engine_backward(model, p);
  const LossEval reference = evaluate(model, p);
  ASSERT_TRUE(std::isfinite(reference.loss));
  ASSERT_EQ(reference.clipped, 0);
  EXPECT_NEAR(engine_loss, reference.loss, 1e-6 * std::abs(reference.loss));

  constexpr float kStep = 2e-3f;
  std::vector<double> analytic, numeric;
  int skipped = 0;
  for (models::Parameter& param : model.params().parameters()) {
    if (!param.spec->trained) continue;
    if (param.spec->name.find("model.layers.4") == 0) continue;  // MTP: not part of the policy
    const trident::testing::Direction direction =
        trident::testing::random_direction(rng, draw, param.value.numel(), 4);
    const double directional = direction.along(param.grad.data<float>());
    const auto [plus, minus] =
        trident::testing::evaluate_both_sides(param.value.data<float>(), param.value.numel(),
                                              direction, kStep, [&] { return evaluate(model, p); });
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

TEST(GrpoGradient, MatchesFiniteDifferences) { expect_gradient_matches_finite_differences(1.0); }

// The rollouts were drawn at T = 0.6: the loss and its gradient are those of softmax(logits / T)
// (a head that forgot 1/T in its forward fails the loss check, in its backward the gradient's).
TEST(GrpoGradient, MatchesFiniteDifferencesAtTheSamplingTemperature) {
  expect_gradient_matches_finite_differences(0.6);
}

}  // namespace
}  // namespace trident::train::grpo
