// Decoding with the absorbed MLA latent cache against full recomputation with model.forward on
// the growing sequence, and the layout independence of sampled rollouts.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>

#include "runtime/io/tokenizer.h"
#include "runtime/train/grpo/generate.h"
#include "tests/grpo/grpo_test_model.h"

namespace trident::train::grpo {
namespace {

// Logits for the next token of `tokens` by a full forward over the whole sequence.
std::vector<float> full_next_logits(models::DeepSeekV3Model& model,
                                    const std::vector<int32_t>& tokens) {
  models::TokenBatch batch;
  batch.batch = 1;
  batch.seq_len = static_cast<int64_t>(tokens.size());
  batch.tokens = tokens;
  batch.tokens.push_back(0);  // a dummy target so the last input is a model position
  batch.loss_mask.assign(batch.tokens.size(), 0);
  const models::ForwardResult out = model.forward(batch);
  const int64_t V = out.logits.size(1);
  const float* last = out.logits.data<float>() + (batch.seq_len - 1) * V;
  return std::vector<float>(last, last + V);
}

// Greedy decoding that runs to `max_new_tokens` unless a stop string ends it (EOS does not).
SamplingOptions greedy_options(int64_t max_new_tokens) {
  SamplingOptions greedy;
  greedy.temperature = 0.0;
  greedy.max_new_tokens = max_new_tokens;
  greedy.stop_at_eos = false;
  return greedy;
}

double rel(const std::vector<float>& a, const std::vector<float>& b) {
  double diff = 0.0, norm = 0.0;
  for (size_t i = 0; i < a.size(); ++i) {
    diff += (static_cast<double>(a[i]) - b[i]) * (static_cast<double>(a[i]) - b[i]);
    norm += static_cast<double>(b[i]) * b[i];
  }
  return std::sqrt(diff / std::max(norm, 1e-30));
}

TEST(GrpoDecode, AbsorbedCacheMatchesFullRecomputation) {
  models::DeepSeekV3Model model(testing::grpo_tiny_config(), 7);
  SamplingOptions greedy = greedy_options(12);
  greedy.record_logits = true;
  // Two prompt lengths (two buckets), two rows in the first.
  const std::vector<GenerationRequest> requests{{0, io::ByteTokenizer::encode("12+34="), 2},
                                                {1, io::ByteTokenizer::encode("58+67="), 1},
                                                {2, io::ByteTokenizer::encode("7+8="), 1}};
  const std::vector<Completion> out = generate(model, requests, greedy);
  ASSERT_EQ(out.size(), 4u);
  int64_t distinct_tokens = 0;
  for (const Completion& c : out) {
    const GenerationRequest& r = requests[c.prompt_id];
    ASSERT_EQ(c.tokens.size(), 12u);
    ASSERT_EQ(c.step_logits.size(), 12u);
    std::vector<int32_t> sequence = r.prompt;
    for (size_t t = 0; t < c.tokens.size(); ++t) {
      const std::vector<float> full = full_next_logits(model, sequence);
      EXPECT_LE(rel(c.step_logits[t], full), 1e-5) << "prompt " << c.prompt_id << " step " << t;
      const int32_t argmax =
          static_cast<int32_t>(std::max_element(full.begin(), full.end()) - full.begin());
      EXPECT_EQ(c.tokens[t], argmax) << "prompt " << c.prompt_id << " step " << t;
      sequence.push_back(c.tokens[t]);
    }
    std::vector<int32_t> sorted = c.tokens;
    std::sort(sorted.begin(), sorted.end());
    distinct_tokens += std::unique(sorted.begin(), sorted.end()) - sorted.begin();
  }
  EXPECT_GT(distinct_tokens, 4);            // the decode is not stuck on one token
  EXPECT_EQ(out[0].tokens, out[1].tokens);  // greedy samples of one prompt agree
}

TEST(GrpoDecode, SampledRolloutsDoNotDependOnBatching) {
  models::DeepSeekV3Model model(testing::grpo_tiny_config(0.05), 3);
  SamplingOptions s;
  s.temperature = 1.0;
  s.top_p = 0.95;
  s.max_new_tokens = 10;
  s.seed = 42;
  const auto prompt_a = io::ByteTokenizer::encode("12+34=");
  const auto prompt_b = io::ByteTokenizer::encode("98+76=");
  const auto together = generate(model, {{5, prompt_a, 3}, {9, prompt_b, 3}}, s);
  const auto alone = generate(model, {{9, prompt_b, 3}}, s);
  ASSERT_EQ(together.size(), 6u);
  for (int64_t j = 0; j < 3; ++j) {
    EXPECT_EQ(together[static_cast<size_t>(3 + j)].tokens, alone[static_cast<size_t>(j)].tokens);
  }
  // Samples of one prompt differ from each other (the stream is keyed by the sample).
  EXPECT_NE(together[0].tokens, together[1].tokens);
}

TEST(GrpoDecode, StopStringsAndLength) {
  models::DeepSeekV3Model model(testing::grpo_tiny_config(), 7);
  SamplingOptions greedy = greedy_options(6);
  const auto first = generate(model, {{0, io::ByteTokenizer::encode("1+2="), 1}}, greedy);
  ASSERT_EQ(first[0].tokens.size(), 6u);
  EXPECT_TRUE(first[0].truncated());
  // Stop on the text of the first three greedy tokens: generation ends right there.
  greedy.stop = {first[0].text.substr(1, 2)};
  const auto stopped = generate(model, {{0, io::ByteTokenizer::encode("1+2="), 1}}, greedy);
  EXPECT_EQ(stopped[0].finish, FinishReason::Stop);
  // The same greedy text, cut where the stop string first completes (at the third token at
  // the latest); the stop string is kept.
  EXPECT_EQ(first[0].text.rfind(stopped[0].text, 0), 0u);
  EXPECT_LE(stopped[0].text.size(), 3u);
  EXPECT_EQ(stopped[0].text.substr(stopped[0].text.size() - 2), greedy.stop[0]);
}

}  // namespace
}  // namespace trident::train::grpo
