// AdamW, the gradient norm's sum of squares and the finiteness count against the CPU oracle.
#include "ops/cpu/optimizer.h"
#include "ops/cuda/optimizer.h"
#include "tests/cuda/cuda_test_util.h"

namespace trident::cuda_test {
namespace {

class CudaOptimizer : public ::testing::TestWithParam<int64_t> {};

// Three steps with fp32 and with bf16 moments, decay on and off, a clip scale below 1: the same
// fp32 formula on both sides (the GPU may fuse a multiply-add where the CPU rounds twice).
TEST_P(CudaOptimizer, AdamWFollowsTheCpu) {
  SKIP_WITHOUT_GPU();
  const int64_t n = GetParam();
  const ops::AdamWSettings settings{0.9, 0.95, 1e-8, 0.1};
  for (const DType moments : {DType::F32, DType::BF16}) {
    Tensor param = random_tensor({n}, 1, 0.02f);
    Tensor m = Tensor::zeros({n}, moments), v = Tensor::zeros({n}, moments);
    Tensor param_gpu = gpu(param), m_gpu = gpu(m), v_gpu = gpu(v);
    for (int64_t step = 1; step <= 3; ++step) {
      const Tensor grad = random_tensor({n}, 10 + static_cast<uint64_t>(step));
      const ops::AdamWStep adam{1e-3, step, step != 2, 0.7f};
      cpu::adamw_update(settings, adam, param, grad, m, v);
      cuda::adamw_update(settings, adam, param_gpu, gpu(grad), m_gpu, v_gpu);
    }
    const double tolerance = moments == DType::F32 ? kFp32Tolerance : kBf16Tolerance;
    EXPECT_LE(gpu_error(param_gpu, param), kFp32Tolerance) << dtype_name(moments);
    EXPECT_LE(relative_error(m_gpu.to(Device::CPU).to(DType::F32), m.to(DType::F32)), tolerance);
    EXPECT_LE(relative_error(v_gpu.to(Device::CPU).to(DType::F32), v.to(DType::F32)), tolerance);
  }
}

// The update's count of non-finite weights, with NaN and infinite gradients planted.
TEST_P(CudaOptimizer, AdamWCountsNonFiniteWeightsLikeTheCpu) {
  SKIP_WITHOUT_GPU();
  const int64_t n = GetParam();
  const ops::AdamWSettings settings{0.9, 0.95, 1e-8, 0.1};
  Tensor param = random_tensor({n}, 2, 0.02f), grad = random_tensor({n}, 3);
  grad.data<float>()[0] = std::numeric_limits<float>::quiet_NaN();
  grad.data<float>()[n - 1] = std::numeric_limits<float>::infinity();
  Tensor m = Tensor::zeros({n}), v = Tensor::zeros({n});
  Tensor param_gpu = gpu(param), m_gpu = gpu(m), v_gpu = gpu(v);
  Tensor count = Tensor::zeros({1}, DType::I64), count_gpu = gpu(count);
  const ops::AdamWStep adam{1e-3, 1, true};
  cpu::adamw_update(settings, adam, param, grad, m, v, &count);
  cuda::adamw_update(settings, adam, param_gpu, gpu(grad), m_gpu, v_gpu, &count_gpu);
  EXPECT_EQ(count.data<int64_t>()[0], n == 1 ? 1 : 2);
  EXPECT_EQ(count_gpu.to(Device::CPU).data<int64_t>()[0], count.data<int64_t>()[0]);
}

// Pieces of the list, an undefined one and an empty one: the double sums agree to round-off.
TEST_P(CudaOptimizer, SumOfSquaresAndNonfiniteCounts) {
  SKIP_WITHOUT_GPU();
  const int64_t n = GetParam();
  const Tensor a = random_tensor({n}, 20), b = random_tensor({n / 2 + 1}, 21, 3.0f);
  const double expected = cpu::sum_of_squares({a, Tensor(), b, Tensor::zeros({0})});
  const double got = cuda::sum_of_squares({gpu(a), Tensor(), gpu(b), gpu(Tensor::zeros({0}))});
  EXPECT_NEAR(got, expected, 1e-12 * expected);
  EXPECT_EQ(cuda::sum_of_squares({}), 0.0);

  Tensor bad = a.clone();
  float* data = bad.data<float>();
  data[0] = std::numeric_limits<float>::quiet_NaN();
  data[n - 1] = std::numeric_limits<float>::infinity();
  const std::vector<Tensor> host = {bad, a, Tensor(), bad.narrow(1, n)};
  const std::vector<Tensor> device = {gpu(bad), gpu(a), Tensor(), gpu(bad).narrow(1, n)};
  EXPECT_EQ(cuda::count_nonfinite(device), cpu::count_nonfinite(host));
  EXPECT_EQ(cpu::count_nonfinite(host),
            (std::vector<int64_t>{n == 1 ? 1 : 2, 0, 0, n == 1 ? 0 : 1}));
}

// One element, a ragged size, several of the 64K-element partial-sum chunks.
INSTANTIATE_TEST_SUITE_P(Sizes, CudaOptimizer, ::testing::Values(1, 1000, 200003));

}  // namespace
}  // namespace trident::cuda_test
