// Mixed precision (docs/precision.md) in the model: bf16 compute copies of the fp32 masters,
// activations rounded to bf16, the saved activations kept in bf16 tensors, and the op that
// rounds them.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include "models/deepseek_v3/model.h"
#include "models/deepseek_v3/saved_activations.h"
#include "ops/ops.h"
#include "runtime/core/rng.h"
#include "tests/models/test_batches.h"
#include "tests/models/test_configs.h"

namespace trident::models {
namespace {

ModelParallel with_precision(DType weights, DType activations) {
  ModelParallel parallel;
  parallel.precision = Precision{weights, activations};
  return parallel;
}

float rounded(float x) { return bf16_to_float(float_to_bf16(x)); }

TEST(RoundToBf16, NearestEvenAndSpecialValues) {
  const float inf = std::numeric_limits<float>::infinity();
  // The bf16 step at 1 is 2^-7: 1 + 2^-8 is a tie that goes to the even 1, 1 + 3·2^-8 a tie that
  // goes to the even 1 + 2^-6; 1 + 2^-8 + 2^-20 is past the tie.
  Tensor x = Tensor::from_vector({1.0f + 0x1p-8f, 1.0f + 3 * 0x1p-8f, 1.0f + 0x1p-8f + 0x1p-20f,
                                  -2.5f, inf, -inf, std::nanf(""), 0.0f},
                                 {8});
  ops::round_to_bf16(x);
  const std::vector<float> got = x.to_vector();
  EXPECT_EQ(got[0], 1.0f);
  EXPECT_EQ(got[1], 1.0f + 0x1p-6f);
  EXPECT_EQ(got[2], 1.0f + 0x1p-7f);
  EXPECT_EQ(got[3], -2.5f);
  EXPECT_EQ(got[4], inf);
  EXPECT_EQ(got[5], -inf);
  EXPECT_TRUE(std::isnan(got[6]));
  EXPECT_EQ(got[7], 0.0f);
}

TEST(Precision, Bf16WeightsAreRoundedCopiesOfTheFp32Masters) {
  DeepSeekV3Model model(testing::tiny_config(), 7, with_precision(DType::BF16, DType::F32));
  ParameterStore& store = model.params();
  for (const Parameter& p : store.parameters()) {
    ASSERT_EQ(p.value.dtype(), DType::F32) << p.spec->name;
    ASSERT_EQ(p.compute.dtype(), DType::BF16) << p.spec->name;
    const std::vector<float> master = p.value.to_vector();
    const std::vector<float> compute = p.compute.to_vector();
    for (size_t i = 0; i < master.size(); ++i) {
      ASSERT_EQ(compute[i], rounded(master[i])) << p.spec->name << "[" << i << "]";
    }
  }
  EXPECT_EQ(store.expert_bank(2, "up_proj").value.dtype(), DType::BF16);
  // A write to the masters reaches the copies at the refresh, not before.
  Parameter& head = store.get("lm_head.weight");
  head.value.fill(0.3f);
  EXPECT_NE(head.compute.item(0), rounded(0.3f));
  store.refresh_compute_weights();
  EXPECT_EQ(head.compute.item(0), rounded(0.3f));
}

TEST(Precision, Fp32WeightsAreTheMastersThemselves) {
  DeepSeekV3Model model(testing::tiny_config(), 7);
  for (const Parameter& p : model.params().parameters()) {
    EXPECT_EQ(p.compute.raw_data(), p.value.raw_data()) << p.spec->name;
  }
}

// bf16 weights change nothing but the weights: the model computes exactly what an fp32 model
// computes whose masters hold the rounded values.
TEST(Precision, Bf16WeightsComputeWithTheRoundedValues) {
  const TokenBatch batch = testing::random_batch(2, 12, 256, 3);
  DeepSeekV3Model low(testing::tiny_config(), 5, with_precision(DType::BF16, DType::F32));
  DeepSeekV3Model rounded_fp32(testing::tiny_config(), 5);
  Tensor values = rounded_fp32.params().flat_values();
  ops::round_to_bf16(values);
  const LossResult a = low.forward(batch).losses;
  const LossResult b = rounded_fp32.forward(batch).losses;
  EXPECT_EQ(a.loss, b.loss);
  EXPECT_EQ(a.lm_loss, b.lm_loss);
  EXPECT_EQ(a.mtp_loss, b.mtp_loss);
}

// A layer's input as a bf16 activation holds it: normal draws rounded to bf16 values.
Tensor bf16_activation(int64_t rows, int64_t width, uint64_t seed) {
  const CounterRng rng(seed, 0);
  std::vector<float> values(static_cast<size_t>(rows * width));
  for (size_t i = 0; i < values.size(); ++i) values[i] = rounded(rng.normal(i));
  return Tensor::from_vector(values, {rows, width});
}

int count_bf16(const std::vector<Tensor*>& saved) {
  int n = 0;
  for (const Tensor* t : saved) n += t->defined() && t->dtype() == DType::BF16 ? 1 : 0;
  return n;
}

// Keeping what a layer saved in bf16 changes nothing but the memory: every saved activation is a
// bf16 value already, so the backward gives the same bits from bf16 tensors as from fp32 ones.
// Layer 0 is dense, layer 2 an MoE layer (router, routed and shared experts).
TEST(Precision, SavedActivationsKeptInBf16GiveTheSameGradients) {
  DeepSeekV3Model model(testing::tiny_config(), 5, with_precision(DType::BF16, DType::BF16));
  const SequenceLayout layout = model.sequence_layout(2, 12);
  const Tensor x = bf16_activation(24, 32, 17);
  const Tensor dout = bf16_activation(24, 32, 18);
  for (const int64_t l : {0, 2}) {
    SCOPED_TRACE("layer " + std::to_string(l));
    const DecoderLayer& layer = model.layer(l);
    Tensor dx[2], grads[2];
    for (const bool kept_in_bf16 : {false, true}) {
      model.params().zero_grad();
      DecoderLayerContext ctx;
      layer.forward(x, layout, 0.01f, ctx);
      const std::vector<Tensor*> saved = saved_activations(ctx);
      EXPECT_EQ(count_bf16(saved), 0);
      if (kept_in_bf16) {
        keep_in_bf16(DType::BF16, saved);
        for (const Tensor* t : saved) {
          if (t->defined()) {
            EXPECT_EQ(t->dtype(), DType::BF16) << t->describe();
          }
        }
        EXPECT_GE(count_bf16(saved), l == 0 ? 16 : 20);
      }
      dx[kept_in_bf16] = layer.backward_input(dout, ctx);
      layer.backward_weight(ctx);
      grads[kept_in_bf16] = model.params().flat_grads().clone();
    }
    EXPECT_EQ(dx[0].to_vector(), dx[1].to_vector());
    EXPECT_EQ(grads[0].to_vector(), grads[1].to_vector());
    EXPECT_GT(relative_error(grads[1], Tensor::zeros(grads[1].shape())), 0.0);
  }
}

// Handles on the same elements share one bf16 copy (the norm output both of MLA's down
// projections read; o_proj's input, a view of the attention output), so nothing is stored twice.
TEST(Precision, HandlesOnTheSameElementsShareOneBf16Copy) {
  DeepSeekV3Model model(testing::tiny_config(), 5, with_precision(DType::F32, DType::BF16));
  DecoderLayerContext ctx;
  model.layer(2).forward(bf16_activation(24, 32, 3), model.sequence_layout(2, 12), 0.0f, ctx);
  keep_in_bf16(DType::BF16, saved_activations(ctx));
  EXPECT_TRUE(ctx.attention.q_a.x.same_elements(ctx.attention.kv_a.x));
  EXPECT_TRUE(ctx.attention.o.x.same_elements(ctx.attention.out.view(ctx.attention.o.x.shape())));
  EXPECT_TRUE(ctx.moe.router.x.same_elements(ctx.moe.shared.gate.x));
  EXPECT_EQ(ctx.attention.q_a.x.dtype(), DType::BF16);
}

// A training forward of the whole model leaves every layer's and every MTP depth's saved
// activations in bf16 under bf16 activations, and in fp32 otherwise.
TEST(Precision, TheModelKeepsEveryLayersSavedActivationsInBf16) {
  const TokenBatch batch = testing::random_batch(2, 12, 256, 4);
  for (const DType activations : {DType::F32, DType::BF16}) {
    DeepSeekV3Model model(testing::tiny_config(), 5, with_precision(DType::BF16, activations));
    const LossScales scales = make_loss_scales(count_targets(batch, model.mtp_depth()), 0.3, 0.01);
    ModelContext ctx;
    model.forward(batch, scales, ctx);
    std::vector<std::vector<Tensor*>> contexts;
    for (DecoderLayerContext& layer : ctx.layers) contexts.push_back(saved_activations(layer));
    for (MtpContext& mtp : ctx.outputs.mtp) contexts.push_back(saved_activations(mtp));
    ASSERT_EQ(contexts.size(), 5u);
    for (const std::vector<Tensor*>& saved : contexts) {
      for (const Tensor* t : saved) {
        if (t->defined()) {
          EXPECT_EQ(t->dtype(), activations) << t->describe();
        }
      }
    }
    model.backward(ctx);
  }
}

// bf16 activations move the loss and the gradients by bf16 round-off: not at all in fp32's
// sense, and by far less than a training signal.
TEST(Precision, Bf16ActivationsFollowFp32) {
  const TokenBatch batch = testing::random_batch(4, 16, 256, 11);
  DeepSeekV3Model high(testing::tiny_config(), 5);
  DeepSeekV3Model low(testing::tiny_config(), 5, with_precision(DType::BF16, DType::BF16));
  const LossScales scales = make_loss_scales(count_targets(batch, high.mtp_depth()), 0.3, 0.01);
  high.params().zero_grad();
  low.params().zero_grad();
  const LossResult a = high.forward_backward(batch, scales);
  const LossResult b = low.forward_backward(batch, scales);
  EXPECT_NE(a.loss, b.loss);
  EXPECT_NEAR(b.loss, a.loss, 1e-2 * a.loss);
  const double grad_error = relative_error(low.params().flat_grads(), high.params().flat_grads());
  EXPECT_GT(grad_error, 0.0);
  EXPECT_LT(grad_error, 5e-2);
}

}  // namespace
}  // namespace trident::models
