// The whole model's analytic gradient against central finite differences of the total loss
// (LM + λ·MTP + α·balance), for a sample of entries of every trained parameter.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <vector>

#include "models/deepseek_v3/model.h"
#include "runtime/core/rng.h"
#include "tests/models/test_batches.h"
#include "tests/models/test_configs.h"
#include "tests/support/directional_difference.h"

namespace trident::models {
namespace {

struct Evaluation {
  double loss = 0.0;
  std::vector<std::vector<int32_t>> routing;  // expert choices of every MoE layer
};

Evaluation evaluate(DeepSeekV3Model& model, const TokenBatch& batch, const LossScales& scales) {
  ModelContext ctx;
  model.forward(batch, scales, ctx);
  Evaluation out;
  out.loss = ctx.losses.loss;
  auto keep = [&](const MoeContext& moe) {
    if (!moe.indices.defined()) return;
    const int32_t* idx = moe.indices.data<int32_t>();
    out.routing.emplace_back(idx, idx + moe.indices.numel());
  };
  for (const DecoderLayerContext& layer : ctx.layers) keep(layer.moe);
  for (const MtpContext& m : ctx.outputs.mtp) keep(m.layer.moe);
  return out;
}

// A larger init than DeepSeek-V3's 0.006 so every path carries gradient well above fp32
// round-off of the loss.
config::ModelConfig gradient_check_config() {
  config::ModelConfig config = testing::tiny_config();
  config.set_initializer_range(0.1);
  return config;
}

TEST(ModelGradients, MatchFiniteDifferencesForEveryParameter) {
  DeepSeekV3Model model(gradient_check_config(), 2024);
  const TokenBatch batch = testing::random_batch(2, 8, 256, 5);
  const LossScales scales =
      make_loss_scales(count_targets(batch, model.mtp_depth()), /*mtp_weight=*/0.3,
                       /*balance_alpha=*/0.05);
  model.params().zero_grad();
  const LossResult result = model.forward_backward(batch, scales);
  ASSERT_TRUE(std::isfinite(result.loss));
  const Evaluation base = evaluate(model, batch, scales);
  EXPECT_NEAR(base.loss, result.loss, 1e-6 * std::abs(result.loss));

  const CounterRng rng(11, stream_id("grad-check"));
  constexpr int kEntriesPerParameter = 4;
  constexpr float kStep = 2e-3f;
  std::vector<double> analytic, numeric;
  int skipped = 0;
  uint64_t draw = 0;
  for (Parameter& param : model.params().parameters()) {
    if (!param.spec->trained) continue;
    const trident::testing::Direction direction =
        trident::testing::random_direction(rng, draw, param.value.numel(), kEntriesPerParameter);
    const double directional = direction.along(param.grad.data<float>());
    const auto [plus, minus] = trident::testing::evaluate_both_sides(
        param.value.data<float>(), param.value.numel(), direction, kStep,
        [&] { return evaluate(model, batch, scales); });
    // The selection is not differentiable: a perturbation that flips a routing choice measures
    // a jump, not the gradient.
    if (plus.routing != base.routing || minus.routing != base.routing) {
      ++skipped;
      continue;
    }
    const double fd = (plus.loss - minus.loss) / (2.0 * kStep);
    analytic.push_back(directional);
    numeric.push_back(fd);
    EXPECT_NEAR(fd, directional, 2e-2 * std::abs(directional) + 2e-4)
        << param.spec->name << " (analytic " << directional << ", numeric " << fd << ")";
  }
  EXPECT_LE(skipped, 3) << skipped << " perturbations changed the routing";
  ASSERT_GT(analytic.size(), 100u);
  double diff = 0.0, norm = 0.0;
  for (size_t i = 0; i < analytic.size(); ++i) {
    diff += (analytic[i] - numeric[i]) * (analytic[i] - numeric[i]);
    norm += analytic[i] * analytic[i];
  }
  EXPECT_LT(std::sqrt(diff / norm), 2e-3);
}

}  // namespace
}  // namespace trident::models
