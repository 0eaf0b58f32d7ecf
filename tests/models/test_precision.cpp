// Mixed precision (docs/precision.md) in the model: bf16 compute copies of the fp32 masters,
// activations rounded to bf16, and the op that rounds them.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

#include "models/deepseek_v3/model.h"
#include "ops/ops.h"
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
