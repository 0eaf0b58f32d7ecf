// Token sampling: greedy, top-k, top-p and the key of the randomness.
#include <gtest/gtest.h>

#include <vector>

#include "runtime/train/grpo/generate.h"

namespace trident::train::grpo {
namespace {

TEST(GrpoSampling, GreedyTopKAndTopP) {
  const std::vector<float> logits{0.0f, 2.0f, 1.0f, 2.0f, -1.0f};
  SamplingOptions greedy;
  greedy.temperature = 0.0;
  EXPECT_EQ(sample_token(logits.data(), 5, greedy, 0.99f), 1);  // lowest id on ties
  SamplingOptions top1;
  top1.top_k = 1;
  for (const float u : {0.01f, 0.5f, 0.99f}) EXPECT_EQ(sample_token(logits.data(), 5, top1, u), 1);
  SamplingOptions top2;
  top2.top_k = 2;  // ids 1 and 3, equally likely
  EXPECT_EQ(sample_token(logits.data(), 5, top2, 0.25f), 1);
  EXPECT_EQ(sample_token(logits.data(), 5, top2, 0.75f), 3);
  SamplingOptions nucleus;
  nucleus.top_p = 0.5;  // p(1) = p(3) ≈ 0.391: the nucleus is {1, 3}
  for (float u = 0.01f; u < 1.0f; u += 0.07f) {
    const int32_t t = sample_token(logits.data(), 5, nucleus, u);
    EXPECT_TRUE(t == 1 || t == 3) << t;
  }
  // Without filtering every token is reachable; u near 1 picks the least likely one.
  SamplingOptions plain;
  EXPECT_EQ(sample_token(logits.data(), 5, plain, 0.9999f), 4);
}

TEST(GrpoSampling, StreamsDifferPerPromptAndSample) {
  EXPECT_NE(sample_stream(0, 0), sample_stream(0, 1));
  EXPECT_NE(sample_stream(0, 1), sample_stream(1, 0));
  EXPECT_EQ(sample_stream(7, 3), sample_stream(7, 3));
}

}  // namespace
}  // namespace trident::train::grpo
