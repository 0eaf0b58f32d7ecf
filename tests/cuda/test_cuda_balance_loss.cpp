// The sequence-wise balance loss: the CUDA kernels against the CPU oracle, sigmoid and softmax
// scores, with and without DeepSeek-V2's device terms, DeepSeek-V3's 256 experts among them.
#include <set>
#include <vector>

#include "ops/cpu/balance_loss.h"
#include "ops/cuda/balance_loss.h"
#include "tests/cuda/cuda_test_util.h"

namespace trident::cuda_test {
namespace {

struct BalanceCase {
  int64_t rows, seq, experts, top_k;
  bool sigmoid;
  int64_t devices;  // 1: no device terms
};

ops::BalanceLossShape shape_of(const BalanceCase& c) {
  ops::BalanceLossShape s;
  s.rows = c.rows;
  s.seq = c.seq;
  s.experts = c.experts;
  s.top_k = c.top_k;
  s.sigmoid = c.sigmoid;
  if (c.devices > 1) {
    s.devices = c.devices;
    s.max_devices = 3;
    s.device_weight = 0.05;
    s.comm_weight = 0.02;
  }
  return s;
}

// Scores in (0, 1) and top_k distinct experts per token.
Tensor random_scores(const ops::BalanceLossShape& s) {
  Tensor scores = random_tensor({s.rows * s.seq, s.experts}, 11);
  float* data = scores.data<float>();
  for (int64_t i = 0; i < scores.numel(); ++i) data[i] = 1.0f / (1.0f + std::exp(-data[i]));
  return scores;
}

Tensor random_indices(const ops::BalanceLossShape& s) {
  const Tensor draws = random_ids(s.rows * s.seq * s.top_k * 4, s.experts, 12);
  const std::vector<int32_t> pool = ints(draws);
  std::vector<int32_t> indices;
  size_t next = 0;
  for (int64_t t = 0; t < s.rows * s.seq; ++t) {
    std::set<int32_t> chosen;
    for (int32_t e = pool[next++ % pool.size()]; static_cast<int64_t>(chosen.size()) < s.top_k;
         e = (e + 1) % s.experts) {
      chosen.insert(e);
    }
    indices.insert(indices.end(), chosen.begin(), chosen.end());
  }
  return Tensor::from_ints(indices, {s.rows * s.seq, s.top_k});
}

class CudaBalanceLoss : public ::testing::TestWithParam<BalanceCase> {};

TEST_P(CudaBalanceLoss, MatchesCpu) {
  SKIP_WITHOUT_GPU();
  const ops::BalanceLossShape s = shape_of(GetParam());
  const Tensor scores = random_scores(s);
  const Tensor indices = random_indices(s);
  Tensor g = Tensor::empty({s.rows, s.experts});
  const double loss = cpu::balance_loss_forward(s, scores, indices, g);
  Tensor g_gpu = poisoned(g.shape());
  const Tensor scores_gpu = gpu(scores);
  const double loss_gpu = cuda::balance_loss_forward(s, scores_gpu, gpu(indices), g_gpu);
  EXPECT_LE(gpu_error(g_gpu, g), kFp32Tolerance);
  EXPECT_NEAR(loss_gpu, loss, 1e-9 * std::abs(loss));

  const Tensor start = random_tensor({s.rows * s.seq, s.experts}, 13);
  EXPECT_LE(output_error(
                start, /*accumulate=*/true,
                [&](Tensor& dlogits) { cpu::balance_loss_backward(s, 0.3f, scores, g, dlogits); },
                [&](Tensor& dlogits) {
                  cuda::balance_loss_backward(s, 0.3f, scores_gpu, g_gpu, dlogits);
                }),
            kFp32Tolerance);
}

INSTANTIATE_TEST_SUITE_P(Shapes, CudaBalanceLoss,
                         ::testing::Values(BalanceCase{1, 1, 4, 1, true, 1},
                                           BalanceCase{3, 17, 16, 4, true, 4},
                                           BalanceCase{2, 33, 10, 3, false, 1},
                                           BalanceCase{4, 4096, 256, 8, true, 8}));

}  // namespace
}  // namespace trident::cuda_test
