// GEMM, linear and grouped linear: cuBLASLt against the CPU oracle.
#include <vector>

#include "ops/cpu/linear.h"
#include "ops/cuda/grouped_gemm.h"
#include "ops/cuda/linear.h"
#include "tests/cuda/cuda_test_util.h"

namespace trident::cuda_test {
namespace {

struct GemmCase {
  int64_t m, n, k;
};
void PrintTo(const GemmCase& c, std::ostream* os) { *os << c.m << "x" << c.n << "x" << c.k; }

class CudaGemm : public ::testing::TestWithParam<GemmCase> {};

TEST_P(CudaGemm, AllTransposesMatchCpu) {
  SKIP_WITHOUT_GPU();
  const GemmCase c = GetParam();
  uint64_t seed = 100;
  for (const bool ta : {false, true}) {
    for (const bool tb : {false, true}) {
      const Tensor a = random_tensor(ta ? Shape{c.k, c.m} : Shape{c.m, c.k}, ++seed);
      const Tensor b = random_tensor(tb ? Shape{c.n, c.k} : Shape{c.k, c.n}, ++seed);
      const Tensor c0 = random_tensor({c.m, c.n}, ++seed);
      Tensor expected = c0.clone();
      cpu::gemm(ta, tb, 0.75f, a, b, 0.5f, expected);
      Tensor got = gpu(c0);
      cuda::gemm(ta, tb, 0.75f, gpu(a), gpu(b), 0.5f, got);
      EXPECT_LE(gpu_error(got, expected), kMatmulTolerance) << "trans_a=" << ta << " trans_b=" << tb;

      Tensor overwritten = poisoned({c.m, c.n});  // beta = 0 must not read C
      cpu::gemm(ta, tb, 1.0f, a, b, 0.0f, expected);
      cuda::gemm(ta, tb, 1.0f, gpu(a), gpu(b), 0.0f, overwritten);
      EXPECT_LE(gpu_error(overwritten, expected), kMatmulTolerance);
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Shapes, CudaGemm,
                         ::testing::Values(GemmCase{1, 1, 1}, GemmCase{7, 13, 5},
                                           GemmCase{64, 96, 48}, GemmCase{130, 33, 257}));

class CudaLinear : public ::testing::TestWithParam<GemmCase> {};

TEST_P(CudaLinear, ForwardAndBothBackwardsMatchCpu) {
  SKIP_WITHOUT_GPU();
  const auto [t, n, k] = GetParam();
  const Tensor x = random_tensor({t, k}, 1);
  const Tensor w = random_tensor({n, k}, 2, 0.2f);
  const Tensor dy = random_tensor({t, n}, 3);

  EXPECT_LE(written_error(
                {t, n}, [&](Tensor& y) { cpu::linear_forward(x, w, y); },
                [&](Tensor& y) { cuda::linear_forward(gpu(x), gpu(w), y); }),
            kMatmulTolerance);

  for (const bool accumulate : {false, true}) {
    const double error = output_error(
        random_tensor({t, k}, 4), accumulate,
        [&](Tensor& dx) { cpu::linear_backward_input(dy, w, dx, accumulate); },
        [&](Tensor& dx) { cuda::linear_backward_input(gpu(dy), gpu(w), dx, accumulate); });
    EXPECT_LE(error, kMatmulTolerance) << "accumulate=" << accumulate;
  }

  EXPECT_LE(output_error(
                random_tensor({n, k}, 5), /*accumulate=*/true,
                [&](Tensor& dw) { cpu::linear_backward_weight(dy, x, dw); },
                [&](Tensor& dw) { cuda::linear_backward_weight(gpu(dy), gpu(x), dw); }),
            kMatmulTolerance);
}

INSTANTIATE_TEST_SUITE_P(Shapes, CudaLinear,
                         ::testing::Values(GemmCase{1, 3, 2}, GemmCase{19, 24, 40},
                                           GemmCase{128, 160, 96}));

// bf16 storage, fp32 accumulation: the CPU sees the same rounded values in fp32.
TEST(CudaLinearBf16, Bf16AndMixedOperandsMatchCpu) {
  SKIP_WITHOUT_GPU();
  const int64_t t = 48, n = 80, k = 72;
  const Tensor x = random_tensor({t, k}, 11).to(DType::BF16);
  const Tensor w = random_tensor({n, k}, 12, 0.2f).to(DType::BF16);
  Tensor expected = Tensor::empty({t, n});
  cpu::linear_forward(x.to(DType::F32), w.to(DType::F32), expected);

  Tensor both = poisoned({t, n});
  cuda::linear_forward(gpu(x), gpu(w), both);
  EXPECT_LE(gpu_error(both, expected), kBf16Tolerance);

  Tensor mixed = poisoned({t, n});
  cuda::linear_forward(gpu(x.to(DType::F32)), gpu(w), mixed);
  EXPECT_LE(gpu_error(mixed, expected), kBf16Tolerance);

  Tensor bf16_out = poisoned({t, n}, DType::BF16);
  cuda::linear_forward(gpu(x), gpu(w), bf16_out);
  EXPECT_LE(gpu_error(bf16_out.to(Device::CPU).to(DType::F32), expected), kBf16Tolerance);
}

struct GroupedCase {
  int64_t n, k;
  std::vector<int64_t> counts;
};
void PrintTo(const GroupedCase& c, std::ostream* os) {
  *os << "N" << c.n << "_K" << c.k << "_groups" << c.counts.size();
}

class CudaGroupedLinear : public ::testing::TestWithParam<GroupedCase> {};

TEST_P(CudaGroupedLinear, MatchesCpuWithEmptyGroups) {
  SKIP_WITHOUT_GPU();
  const GroupedCase& c = GetParam();
  const int64_t groups = static_cast<int64_t>(c.counts.size());
  int64_t rows = 0;
  for (const int64_t count : c.counts) rows += count;
  const Tensor x = random_tensor({rows, c.k}, 21);
  const Tensor w = random_tensor({groups, c.n, c.k}, 22, 0.2f);
  const Tensor dy = random_tensor({rows, c.n}, 23);

  EXPECT_LE(written_error(
                {rows, c.n}, [&](Tensor& y) { cpu::grouped_linear_forward(x, w, c.counts, y); },
                [&](Tensor& y) { cuda::grouped_linear_forward(gpu(x), gpu(w), c.counts, y); }),
            kMatmulTolerance);

  for (const bool accumulate : {false, true}) {
    const double error = output_error(
        random_tensor({rows, c.k}, 24), accumulate,
        [&](Tensor& dx) { cpu::grouped_linear_backward_input(dy, w, c.counts, dx, accumulate); },
        [&](Tensor& dx) {
          cuda::grouped_linear_backward_input(gpu(dy), gpu(w), c.counts, dx, accumulate);
        });
    EXPECT_LE(error, kMatmulTolerance) << "accumulate=" << accumulate;
  }

  EXPECT_LE(
      output_error(
          random_tensor({groups, c.n, c.k}, 25), /*accumulate=*/true,
          [&](Tensor& dw) { cpu::grouped_linear_backward_weight(dy, x, c.counts, dw); },
          [&](Tensor& dw) { cuda::grouped_linear_backward_weight(gpu(dy), gpu(x), c.counts, dw); }),
      kMatmulTolerance);
}

INSTANTIATE_TEST_SUITE_P(Counts, CudaGroupedLinear,
                         ::testing::Values(GroupedCase{8, 4, {3}},
                                           GroupedCase{24, 16, {5, 0, 9, 1}},
                                           GroupedCase{64, 48, {0, 33, 17, 0, 70, 2, 0, 11}}));

// The grouped layers' one launch: problems of different heights and every pair of transposes,
// in f32 and in bf16, against the CPU product of the same (rounded) values. cuBLAS must take
// both dtypes: a decline would put the experts back to one launch each.
TEST(CudaGroupedGemm, OneLaunchMatchesTheCpu) {
  SKIP_WITHOUT_GPU();
  const int64_t n = 24, k = 16;
  const int64_t heights[] = {5, 17, 1, 33};
  for (const DType dtype : {DType::F32, DType::BF16}) {
    std::vector<Tensor> a_host, b_host, expected, a_gpu, b_gpu, c_gpu;
    std::vector<cuda::Matmul> problems;
    uint64_t seed = 300;
    for (int i = 0; i < 4; ++i) {
      cuda::Matmul p;
      p.trans_a = (i & 1) != 0;
      p.trans_b = (i & 2) != 0;
      p.m = heights[i];
      p.n = n;
      p.k = k;
      p.alpha = 0.5f;
      p.beta = i == 3 ? 1.0f : 0.0f;
      // The operands in `dtype`, and their values as f32 for the CPU.
      const Tensor a = random_tensor(p.trans_a ? Shape{k, p.m} : Shape{p.m, k}, ++seed).to(dtype);
      const Tensor b = random_tensor(p.trans_b ? Shape{n, k} : Shape{k, n}, ++seed).to(dtype);
      const Tensor c = random_tensor({p.m, n}, ++seed).to(dtype);
      Tensor want = c.to(DType::F32);
      cpu::gemm(p.trans_a, p.trans_b, p.alpha, a.to(DType::F32), b.to(DType::F32), p.beta, want);
      expected.push_back(want);
      a_gpu.push_back(gpu(a));
      b_gpu.push_back(gpu(b));
      c_gpu.push_back(gpu(c));
      p.a = a_gpu.back().raw_data();
      p.b = b_gpu.back().raw_data();
      p.c = c_gpu.back().raw_data();
      p.a_type = p.b_type = p.c_type = dtype;
      problems.push_back(p);
    }
    ASSERT_TRUE(cuda::grouped_gemm(problems, nullptr)) << dtype_name(dtype);
    const double tolerance = dtype == DType::F32 ? kMatmulTolerance : kBf16Tolerance;
    for (size_t i = 0; i < problems.size(); ++i) {
      EXPECT_LE(relative_error(c_gpu[i].to(Device::CPU).to(DType::F32), expected[i]), tolerance)
          << dtype_name(dtype) << " problem " << i;
    }
  }
  // What it declines, running nothing: a single product, empty dimensions, mixed dtypes.
  cuda::Matmul empty;
  EXPECT_FALSE(cuda::grouped_gemm({empty}, nullptr));
  EXPECT_FALSE(cuda::grouped_gemm({empty, empty}, nullptr));
  cuda::Matmul mixed = empty;
  mixed.m = mixed.n = mixed.k = 1;
  mixed.b_type = DType::BF16;
  EXPECT_FALSE(cuda::grouped_gemm({mixed, mixed}, nullptr));
}

}  // namespace
}  // namespace trident::cuda_test
