// Micro-batch invariance, split backward, pipeline-style layer ranges and a few SGD steps.
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "models/deepseek_v3/model.h"
#include "ops/ops.h"
#include "tests/models/test_batches.h"
#include "tests/models/test_configs.h"

namespace trident::models {
namespace {

constexpr double kLambda = 0.3;
constexpr double kAlpha = 0.01;

LossScales global_scales(const TokenBatch& batch, int64_t depth) {
  return make_loss_scales(count_targets(batch, depth), kLambda, kAlpha);
}

TEST(ModelTraining, MicroBatchesWithGlobalScalingSumToTheFullBatchGradient) {
  const TokenBatch batch = testing::random_batch(4, 10, 256, 77);
  DeepSeekV3Model whole(testing::tiny_config(), 5);
  DeepSeekV3Model split(testing::tiny_config(), 5);
  const LossScales scales = global_scales(batch, whole.mtp_depth());

  whole.params().zero_grad();
  const LossResult full = whole.forward_backward(batch, scales);
  split.params().zero_grad();
  const LossResult first = split.forward_backward(testing::slice_rows(batch, 0, 2), scales);
  const LossResult second = split.forward_backward(testing::slice_rows(batch, 2, 4), scales);

  EXPECT_NEAR(first.loss + second.loss, full.loss, 1e-6 * full.loss);
  EXPECT_NEAR(first.lm_loss + second.lm_loss, full.lm_loss, 1e-6 * full.lm_loss);
  EXPECT_NEAR(first.mtp_loss + second.mtp_loss, full.mtp_loss, 1e-6 * full.mtp_loss);
  EXPECT_NEAR(first.balance_loss + second.balance_loss, full.balance_loss,
              1e-6 * full.balance_loss);
  EXPECT_EQ(first.lm_tokens + second.lm_tokens, scales.lm_targets);
  EXPECT_LE(relative_error(split.params().flat_grads(), whole.params().flat_grads()), 1e-5);
  for (const Parameter& param : whole.params().parameters()) {
    if (!param.spec->trained) continue;
    EXPECT_LE(relative_error(split.params().grad(param.spec->name), param.grad), 1e-5)
        << param.spec->name;
  }
  ASSERT_EQ(split.expert_loads().size(), whole.expert_loads().size());
  for (size_t i = 0; i < whole.expert_loads().size(); ++i) {
    EXPECT_EQ(split.expert_loads()[i].tokens_per_expert, whole.expert_loads()[i].tokens_per_expert);
  }
  // 2 main MoE layers + the MTP layer, each token choosing k experts.
  ASSERT_EQ(whole.expert_loads().size(), 3u);
  int64_t routed = 0;
  for (int64_t tokens : whole.expert_loads()[0].tokens_per_expert) routed += tokens;
  EXPECT_EQ(routed, 4 * 10 * 2);
}

// Running layers as two pipeline stages, with every backward_weight deferred until all
// backward_inputs are done (zero-bubble order), gives the same gradients as the model.
TEST(ModelTraining, StagedForwardAndDeferredWeightGradients) {
  const TokenBatch batch = testing::random_batch(2, 8, 256, 78);
  DeepSeekV3Model reference(testing::tiny_config(), 6);
  const LossScales scales = global_scales(batch, reference.mtp_depth());
  reference.params().zero_grad();
  reference.forward_backward(batch, scales);

  DeepSeekV3Model staged(testing::tiny_config(), 6);
  staged.params().zero_grad();
  ModelContext ctx;
  staged.forward(batch, scales, ctx);
  // Recompute the layers as two stages from the embedding and check the hand-off.
  const SequenceLayout layout = staged.sequence_layout(batch.batch, batch.seq_len);
  std::vector<DecoderLayerContext> stage0, stage1;
  const float coef = DeepSeekV3Model::balance_coefficient(scales);
  const Tensor x = staged.embedding().forward(input_ids(batch));
  const Tensor mid = staged.forward_layers(0, 2, x, layout, coef, stage0);
  const Tensor out = staged.forward_layers(2, 4, mid, layout, coef, stage1);
  EXPECT_LE(relative_error(out, ctx.outputs.head.norm.x), 1e-6);

  // A gradient for the last layer's output; run both stages with deferred weights, then
  // compare against running with immediate weights on a fresh copy.
  Tensor dout = out.clone();
  const Tensor d_mid = staged.backward_layers(2, 4, dout, stage1, /*with_weights=*/false);
  const Tensor dx = staged.backward_layers(0, 2, d_mid, stage0, /*with_weights=*/false);
  staged.params().zero_grad();
  for (int64_t i = 0; i < 2; ++i) staged.layer(i).backward_weight(stage0[static_cast<size_t>(i)]);
  for (int64_t i = 2; i < 4; ++i)
    staged.layer(i).backward_weight(stage1[static_cast<size_t>(i - 2)]);
  const Tensor deferred = staged.params().flat_grads().clone();

  staged.params().zero_grad();
  std::vector<DecoderLayerContext> all;
  const Tensor out2 = staged.forward_layers(0, 4, x, layout, coef, all);
  const Tensor dx2 = staged.backward_layers(0, 4, dout, all, /*with_weights=*/true);
  EXPECT_LE(relative_error(dx, dx2), 1e-6);
  EXPECT_LE(relative_error(deferred, staged.params().flat_grads()), 1e-6);

  // And the model's own split forward/backward equals forward_backward.
  staged.params().zero_grad();
  staged.backward(ctx);
  EXPECT_LE(relative_error(staged.params().flat_grads(), reference.params().flat_grads()), 1e-6);
}

TEST(ModelTraining, LossDecreasesUnderSgd) {
  DeepSeekV3Model model(testing::tiny_config(), 9);
  const TokenBatch batch = testing::random_batch(4, 16, 256, 12);
  const LossScales scales = global_scales(batch, model.mtp_depth());
  std::vector<double> losses;
  for (int step = 0; step < 8; ++step) {
    model.params().zero_grad();
    losses.push_back(model.forward_backward(batch, scales).loss);
    Tensor values = model.params().flat_values();  // a handle on the store's values
    ops::axpy(-0.2f, model.params().flat_grads(), values);
  }
  for (size_t i = 1; i < losses.size(); ++i) EXPECT_LT(losses[i], losses[i - 1]) << "step " << i;
  EXPECT_LT(losses.back(), 0.9 * losses.front());
}

TEST(ModelTraining, RouterBiasUpdateFollowsTheLoadSign) {
  DeepSeekV3Model model(testing::tiny_config(), 10);
  ExpertLoad load;
  load.layer = 2;
  load.tokens_per_expert = {4, 0, 2, 2, 2, 2, 2, 2};  // mean 2
  model.update_router_bias({load}, 0.001);
  const Tensor& bias = model.params().value("model.layers.2.mlp.gate.e_score_correction_bias");
  EXPECT_FLOAT_EQ(bias.item(0), -0.001f);
  EXPECT_FLOAT_EQ(bias.item(1), 0.001f);
  EXPECT_FLOAT_EQ(bias.item(2), 0.0f);
}

TEST(ModelTraining, ForwardReturnsLogitsAndLossesWithoutGradients) {
  DeepSeekV3Model model(testing::tiny_config(), 11);
  const TokenBatch batch = testing::random_batch(2, 6, 256, 13, /*mask_some=*/false);
  model.params().zero_grad();
  const ForwardResult result = model.forward(batch);
  EXPECT_EQ(result.logits.shape(), (Shape{12, 256}));
  ASSERT_EQ(result.mtp_logits.size(), 1u);
  EXPECT_EQ(result.losses.lm_tokens, 12);
  EXPECT_EQ(result.losses.mtp_tokens[0], 10);  // the last position of each row has no t_{i+2}
  // A random model predicts about uniformly: loss ≈ ln 256.
  EXPECT_NEAR(result.losses.lm_loss, std::log(256.0), 0.1);
  double grad_sum = 0.0;
  for (float g : model.params().flat_grads().to_vector()) grad_sum += std::abs(g);
  EXPECT_EQ(grad_sum, 0.0);
}

// A model built for inference holds no gradient buffers, gives the forward of a trained one
// with the same weights, and refuses a backward pass instead of writing through a null buffer.
TEST(ModelTraining, AnInferenceModelHasNoGradientsAndRefusesBackward) {
  const TokenBatch batch = testing::random_batch(2, 10, 256, 78);
  DeepSeekV3Model trained(testing::tiny_config(), 6);
  DeepSeekV3Model inference(testing::tiny_config(), ForInference{});
  EXPECT_FALSE(inference.params().has_gradients());
  EXPECT_FALSE(inference.params().expert_bank(2, "down_proj").grad.defined());
  for (const Parameter& p : inference.params().parameters()) EXPECT_FALSE(p.grad.defined());
  Tensor values = inference.params().flat_values();  // a view: the copy lands in the store
  values.copy_from(trained.params().flat_values());
  const LossScales scales = global_scales(batch, trained.mtp_depth());
  EXPECT_EQ(inference.forward(batch, &scales).losses.loss,
            trained.forward(batch, &scales).losses.loss);
  EXPECT_THROW(inference.forward_backward(batch, scales), Error);
  EXPECT_THROW(inference.params().zero_grad(), Error);
}

}  // namespace
}  // namespace trident::models
