// Cross-entropy (loss sum, saved logsumexp, gradient) and token log-probs against the CPU.
#include <cmath>
#include <vector>

#include "ops/cpu/cross_entropy.h"
#include "ops/cuda/cross_entropy.h"
#include "tests/cuda/cuda_test_util.h"

namespace trident::cuda_test {
namespace {

struct VocabCase {
  int64_t tokens, vocab;
};
void PrintTo(const VocabCase& c, std::ostream* os) { *os << "T" << c.tokens << "_V" << c.vocab; }

class CudaCrossEntropy : public ::testing::TestWithParam<VocabCase> {};

TEST_P(CudaCrossEntropy, LossGradientAndLogprobsMatchCpu) {
  SKIP_WITHOUT_GPU();
  const auto [tokens, vocab] = GetParam();
  const Tensor logits = random_tensor({tokens, vocab}, 1, 3.0f);
  std::vector<int32_t> target_values = ints(random_ids(tokens, vocab, 2));
  for (size_t i = 2; i < target_values.size(); i += 3) target_values[i] = cpu::kIgnoreIndex;
  const Tensor targets = Tensor::from_ints(target_values, {tokens});

  Tensor lse = Tensor::empty({tokens});
  const cpu::CrossEntropyResult expected = cpu::cross_entropy_forward(logits, targets, lse);
  Tensor lse_gpu = poisoned({tokens});
  const Tensor logits_gpu = gpu(logits), targets_gpu = gpu(targets);
  const cuda::CrossEntropyResult got = cuda::cross_entropy_forward(logits_gpu, targets_gpu, lse_gpu);
  EXPECT_EQ(got.tokens, expected.tokens);
  EXPECT_NEAR(got.loss_sum, expected.loss_sum, kFp32Tolerance * std::abs(expected.loss_sum));
  EXPECT_LE(gpu_error(lse_gpu, lse), kFp32Tolerance);

  const float grad_scale = 1.0f / static_cast<float>(expected.tokens > 0 ? expected.tokens : 1);
  EXPECT_LE(written_error(
                {tokens, vocab},
                [&](Tensor& dlogits) {
                  cpu::cross_entropy_backward(logits, targets, lse, grad_scale, dlogits);
                },
                [&](Tensor& dlogits) {
                  cuda::cross_entropy_backward(logits_gpu, targets_gpu, lse_gpu, grad_scale,
                                               dlogits);
                }),
            kFp32Tolerance);

  EXPECT_LE(written_error(
                {tokens}, [&](Tensor& logprobs) { cpu::token_logprobs(logits, targets, logprobs); },
                [&](Tensor& logprobs) { cuda::token_logprobs(logits_gpu, targets_gpu, logprobs); }),
            kFp32Tolerance);

  // GRPO's scores and their gradient (host weights, zero and ignored rows left at 0).
  const std::vector<cpu::TokenScore> scores = cpu::token_scores(logits, targets);
  const std::vector<cpu::TokenScore> scores_gpu = cuda::token_scores(logits_gpu, targets_gpu);
  ASSERT_EQ(scores_gpu.size(), scores.size());
  for (size_t t = 0; t < scores.size(); ++t) {
    EXPECT_NEAR(scores_gpu[t].logprob, scores[t].logprob, 1e-9 * (1 + std::abs(scores[t].logprob)));
    EXPECT_NEAR(scores_gpu[t].entropy, scores[t].entropy, 1e-9 * (1 + scores[t].entropy));
  }
  std::vector<double> weights(static_cast<size_t>(tokens));
  for (size_t t = 0; t < weights.size(); ++t) weights[t] = t % 4 == 1 ? 0.0 : 0.5 - 0.1 * t;
  EXPECT_LE(
      written_error(
          {tokens, vocab},
          [&](Tensor& dlogits) { cpu::token_logprobs_backward(logits, targets, weights, dlogits); },
          [&](Tensor& dlogits) {
            cuda::token_logprobs_backward(logits_gpu, targets_gpu, weights, dlogits);
          }),
      kFp32Tolerance);
}

INSTANTIATE_TEST_SUITE_P(Shapes, CudaCrossEntropy,
                         ::testing::Values(VocabCase{1, 2}, VocabCase{7, 100},
                                           VocabCase{64, 5000}, VocabCase{5, 129280}));

TEST(CudaCrossEntropyErrors, TargetOutsideVocabularyIsReported) {
  SKIP_WITHOUT_GPU();
  const Tensor logits = gpu(random_tensor({2, 8}, 3));
  const Tensor targets = gpu(Tensor::from_ints({1, 8}, {2}));
  Tensor lse = poisoned({2});
  EXPECT_THROW(cuda::cross_entropy_forward(logits, targets, lse), Error);
}

}  // namespace
}  // namespace trident::cuda_test
