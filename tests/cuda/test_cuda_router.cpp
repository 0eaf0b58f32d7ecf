// Router (sigmoid/softmax, group-limited top-k) and the expert permutation against the CPU.
#include <vector>

#include "ops/cpu/router.h"
#include "ops/cuda/router.h"
#include "tests/cuda/cuda_test_util.h"

namespace trident::cuda_test {
namespace {

struct RouterCase {
  int64_t tokens;
  cpu::RouterSettings settings;
};
void PrintTo(const RouterCase& c, std::ostream* os) {
  *os << "T" << c.tokens << "_E" << c.settings.experts << "_k" << c.settings.top_k << "_g"
      << c.settings.n_group << "of" << c.settings.topk_group
      << (c.settings.sigmoid ? "_sigmoid" : "_softmax")
      << (c.settings.group_top == 1 ? "_groupmax" : "");
}

cpu::RouterSettings settings(int64_t experts, int64_t top_k, int64_t n_group, int64_t topk_group,
                             bool sigmoid, bool normalize, int64_t group_top = 2) {
  cpu::RouterSettings s;
  s.experts = experts;
  s.top_k = top_k;
  s.n_group = n_group;
  s.topk_group = topk_group;
  s.scaling = 2.5f;
  s.normalize = normalize;
  s.sigmoid = sigmoid;
  s.group_top = group_top;
  return s;
}

class CudaRouter : public ::testing::TestWithParam<RouterCase> {};

TEST_P(CudaRouter, ForwardBackwardAndPermutationMatchCpu) {
  SKIP_WITHOUT_GPU();
  const int64_t tokens = GetParam().tokens;
  const cpu::RouterSettings& s = GetParam().settings;
  const int64_t e = s.experts, k = s.top_k;
  const Tensor logits = random_tensor({tokens, e}, 1, 2.0f);
  const Tensor bias = random_tensor({e}, 2, 0.1f);

  Tensor indices = Tensor::empty({tokens, k}, DType::I32);
  Tensor weights = Tensor::empty({tokens, k});
  Tensor scores = Tensor::empty({tokens, e});
  cpu::router_forward(s, logits, bias, indices, weights, scores);
  Tensor indices_gpu = poisoned({tokens, k}, DType::I32);
  Tensor weights_gpu = poisoned({tokens, k});
  Tensor scores_gpu = poisoned({tokens, e});
  cuda::router_forward(s, gpu(logits), gpu(bias), indices_gpu, weights_gpu, scores_gpu);
  EXPECT_EQ(ints(indices_gpu), ints(indices));  // random logits: no near-ties to flip
  EXPECT_LE(gpu_error(weights_gpu, weights), kFp32Tolerance);
  EXPECT_LE(gpu_error(scores_gpu, scores), kFp32Tolerance);

  const Tensor dweights = random_tensor({tokens, k}, 3);
  EXPECT_LE(
      written_error(
          {tokens, e},
          [&](Tensor& dlogits) { cpu::router_backward(s, dweights, indices, scores, dlogits); },
          [&](Tensor& dlogits) {
            cuda::router_backward(s, gpu(dweights), gpu(indices), gpu(scores), dlogits);
          }),
      kFp32Tolerance);

  // The permutation built on the GPU from the same indices is the CPU's, row for row.
  const cpu::PermutePlan plan = cpu::make_permute_plan(indices, e);
  const cuda::PermutePlan plan_gpu = cuda::make_permute_plan(gpu(indices), e);
  EXPECT_EQ(plan_gpu.tokens_per_expert, plan.tokens_per_expert);
  EXPECT_EQ(cuda::count_per_expert(gpu(indices), e), plan.tokens_per_expert);
  EXPECT_EQ(ints(plan_gpu.slot_to_row), ints(plan.slot_to_row));
  EXPECT_EQ(ints(plan_gpu.row_to_token), ints(plan.row_to_token));

  const int64_t dim = 24;
  const Tensor x = random_tensor({tokens, dim}, 4);
  EXPECT_LE(
      written_error(
          {tokens * k, dim}, [&](Tensor& permuted) { cpu::permute_forward(plan, x, permuted); },
          [&](Tensor& permuted) { cuda::permute_forward(plan_gpu, gpu(x), permuted); }),
      kFp32Tolerance);

  const Tensor dpermuted = random_tensor({tokens * k, dim}, 5);
  for (const bool accumulate : {false, true}) {
    const double error = output_error(
        random_tensor({tokens, dim}, 6), accumulate,
        [&](Tensor& dx) { cpu::permute_backward(plan, dpermuted, dx, accumulate); },
        [&](Tensor& dx) { cuda::permute_backward(plan_gpu, gpu(dpermuted), dx, accumulate); });
    EXPECT_LE(error, kFp32Tolerance) << "accumulate=" << accumulate;
  }

  const Tensor y = random_tensor({tokens * k, dim}, 7);
  EXPECT_LE(written_error(
                {tokens, dim},
                [&](Tensor& combined) { cpu::unpermute_forward(plan, y, weights, combined); },
                [&](Tensor& combined) {
                  cuda::unpermute_forward(plan_gpu, gpu(y), gpu(weights), combined);
                }),
            kFp32Tolerance);

  const Tensor dcombined = random_tensor({tokens, dim}, 8);
  Tensor dy = Tensor::empty({tokens * k, dim});
  Tensor dw = Tensor::empty({tokens, k});
  cpu::unpermute_backward(plan, dcombined, y, weights, dy, dw);
  Tensor dy_gpu = poisoned({tokens * k, dim});
  Tensor dw_gpu = poisoned({tokens, k});
  cuda::unpermute_backward(plan_gpu, gpu(dcombined), gpu(y), gpu(weights), dy_gpu, dw_gpu);
  EXPECT_LE(gpu_error(dy_gpu, dy), kFp32Tolerance);
  EXPECT_LE(gpu_error(dw_gpu, dw), kFp32Tolerance);
}

INSTANTIATE_TEST_SUITE_P(
    Settings, CudaRouter,
    ::testing::Values(RouterCase{1, settings(4, 1, 1, 1, true, true)},
                      RouterCase{37, settings(16, 4, 4, 2, true, true)},
                      RouterCase{100, settings(64, 6, 1, 1, false, false)},
                      RouterCase{300, settings(256, 8, 8, 4, true, true)},
                      RouterCase{2500, settings(32, 2, 4, 4, true, false)},
                      // DeepSeek-V2: softmax, groups scored by their best expert.
                      RouterCase{200, settings(160, 6, 8, 3, false, false, 1)}));

}  // namespace
}  // namespace trident::cuda_test
