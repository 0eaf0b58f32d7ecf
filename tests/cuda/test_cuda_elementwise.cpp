// Embedding, RMSNorm, SwiGLU and BLAS-1 kernels against the CPU oracle.
#include "ops/cpu/elementwise.h"
#include "ops/cuda/elementwise.h"
#include "tests/cuda/cuda_test_util.h"

namespace trident::cuda_test {
namespace {

struct RowsCase {
  int64_t rows, dim;
};
void PrintTo(const RowsCase& c, std::ostream* os) { *os << "rows" << c.rows << "_dim" << c.dim; }

class CudaElementwise : public ::testing::TestWithParam<RowsCase> {};

TEST_P(CudaElementwise, EmbeddingForwardAndBackward) {
  SKIP_WITHOUT_GPU();
  const auto [tokens, dim] = GetParam();
  const int64_t vocab = 37;
  const Tensor ids = random_ids(tokens, vocab, 1);  // repeats: the backward must add them up
  const Tensor table = random_tensor({vocab, dim}, 2);
  Tensor out = Tensor::empty({tokens, dim});
  cpu::embedding_forward(ids, table, out);
  Tensor out_gpu = poisoned({tokens, dim});
  cuda::embedding_forward(gpu(ids), gpu(table), out_gpu);
  EXPECT_LE(gpu_error(out_gpu, out), kFp32Tolerance);

  Tensor out_bf16 = poisoned({tokens, dim});
  cuda::embedding_forward(gpu(ids), gpu(table.to(DType::BF16)), out_bf16);
  EXPECT_LE(gpu_error(out_bf16, out), kBf16Tolerance);

  const Tensor dout = random_tensor({tokens, dim}, 3);
  EXPECT_LE(
      output_error(
          random_tensor({vocab, dim}, 4), /*accumulate=*/true,
          [&](Tensor& dtable) { cpu::embedding_backward_weight(ids, dout, dtable); },
          [&](Tensor& dtable) { cuda::embedding_backward_weight(gpu(ids), gpu(dout), dtable); }),
      kFp32Tolerance);
}

TEST_P(CudaElementwise, RmsNormForwardAndBackward) {
  SKIP_WITHOUT_GPU();
  const auto [rows, dim] = GetParam();
  const float eps = 1e-6f;
  const Tensor x = random_tensor({rows, dim}, 10, 2.0f, 0.3f);
  const Tensor w = random_tensor({dim}, 11, 0.5f, 1.0f);
  Tensor y = Tensor::empty({rows, dim});
  Tensor rstd = Tensor::empty({rows});
  cpu::rmsnorm_forward(x, w, eps, y, rstd);
  Tensor y_gpu = poisoned({rows, dim});
  Tensor rstd_gpu = poisoned({rows});
  cuda::rmsnorm_forward(gpu(x), gpu(w), eps, y_gpu, rstd_gpu);
  EXPECT_LE(gpu_error(y_gpu, y), kFp32Tolerance);
  EXPECT_LE(gpu_error(rstd_gpu, rstd), kFp32Tolerance);

  const Tensor dy = random_tensor({rows, dim}, 12);
  for (const bool accumulate : {false, true}) {
    const double error = output_error(
        random_tensor({rows, dim}, 13), accumulate,
        [&](Tensor& dx) { cpu::rmsnorm_backward_input(dy, x, w, rstd, dx, accumulate); },
        [&](Tensor& dx) {
          cuda::rmsnorm_backward_input(gpu(dy), gpu(x), gpu(w), gpu(rstd), dx, accumulate);
        });
    EXPECT_LE(error, kFp32Tolerance) << "accumulate=" << accumulate;
  }
  EXPECT_LE(output_error(
                random_tensor({dim}, 14), /*accumulate=*/true,
                [&](Tensor& dw) { cpu::rmsnorm_backward_weight(dy, x, rstd, dw); },
                [&](Tensor& dw) { cuda::rmsnorm_backward_weight(gpu(dy), gpu(x), gpu(rstd), dw); }),
            kFp32Tolerance);

  // bf16 weight, fp32 arithmetic: same as the CPU with the rounded weight.
  const Tensor w_bf16 = w.to(DType::BF16);
  cpu::rmsnorm_forward(x, w_bf16.to(DType::F32), eps, y, rstd);
  cuda::rmsnorm_forward(gpu(x), gpu(w_bf16), eps, y_gpu, rstd_gpu);
  EXPECT_LE(gpu_error(y_gpu, y), kBf16Tolerance);
}

TEST_P(CudaElementwise, SwigluAxpyScale) {
  SKIP_WITHOUT_GPU();
  const auto [rows, dim] = GetParam();
  const Tensor gate = random_tensor({rows, dim}, 20, 2.0f);
  const Tensor up = random_tensor({rows, dim}, 21);
  EXPECT_LE(written_error(
                {rows, dim}, [&](Tensor& out) { cpu::swiglu_forward(gate, up, out); },
                [&](Tensor& out) { cuda::swiglu_forward(gpu(gate), gpu(up), out); }),
            kFp32Tolerance);

  const Tensor dout = random_tensor({rows, dim}, 22);
  Tensor dgate = Tensor::empty({rows, dim});
  Tensor dup = Tensor::empty({rows, dim});
  cpu::swiglu_backward(dout, gate, up, dgate, dup);
  Tensor dgate_gpu = poisoned({rows, dim});
  Tensor dup_gpu = poisoned({rows, dim});
  cuda::swiglu_backward(gpu(dout), gpu(gate), gpu(up), dgate_gpu, dup_gpu);
  EXPECT_LE(gpu_error(dgate_gpu, dgate), kFp32Tolerance);
  EXPECT_LE(gpu_error(dup_gpu, dup), kFp32Tolerance);

  Tensor y = up.clone();
  cpu::axpy(-0.7f, gate, y);
  Tensor y_gpu = gpu(up);
  cuda::axpy(-0.7f, gpu(gate), y_gpu);
  EXPECT_LE(gpu_error(y_gpu, y), kFp32Tolerance);

  Tensor scaled = Tensor::empty({rows, dim});
  cpu::scale(gate, 1.5f, scaled);
  Tensor scaled_gpu = poisoned({rows, dim});
  cuda::scale(gpu(gate), 1.5f, scaled_gpu);
  EXPECT_LE(gpu_error(scaled_gpu, scaled), kFp32Tolerance);
  Tensor in_place = gpu(gate);
  cuda::scale(in_place, 1.5f, in_place);
  EXPECT_LE(gpu_error(in_place, scaled), kFp32Tolerance);
}

TEST_P(CudaElementwise, CopyColumns) {
  SKIP_WITHOUT_GPU();
  const auto [rows, dim] = GetParam();
  // Columns [dim / 3, dim / 3 + dim / 2) of src [rows, dim] into a [rows, dim + 3] at column 3.
  const int64_t begin = dim / 3, count = dim / 2;
  const Tensor src = random_tensor({rows, dim}, 30);
  for (const bool accumulate : {false, true}) {
    // Both sides start from the same destination: the columns outside the range must survive.
    EXPECT_LE(output_error(
                  random_tensor({rows, dim + 3}, 31), /*accumulate=*/true,
                  [&](Tensor& dst) {
                    cpu::copy_columns(src, dim, begin, dst, dim + 3, 3, count, accumulate);
                  },
                  [&](Tensor& dst) {
                    cuda::copy_columns(gpu(src), dim, begin, dst, dim + 3, 3, count, accumulate);
                  }),
              kFp32Tolerance);
  }
}

INSTANTIATE_TEST_SUITE_P(Shapes, CudaElementwise,
                         ::testing::Values(RowsCase{1, 1}, RowsCase{5, 33}, RowsCase{64, 512},
                                           RowsCase{300, 7168}));

}  // namespace
}  // namespace trident::cuda_test
