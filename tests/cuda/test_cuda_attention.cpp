// Causal attention (forward, saved logsumexp, backward) against the CPU oracle.
#include "ops/cpu/attention.h"
#include "ops/cuda/attention.h"
#include "tests/cuda/cuda_test_util.h"

#include <ostream>

// Readable ctest names for the parameterised cases (found by argument-dependent lookup).
namespace trident::ops::cpu {
void PrintTo(const AttentionShape& s, std::ostream* os) {
  *os << "B" << s.batch << "_S" << s.seq << "_H" << s.heads << "_qk" << s.qk_dim << "_v" << s.v_dim;
}
}  // namespace trident::ops::cpu

namespace trident::cuda_test {
namespace {

class CudaAttention : public ::testing::TestWithParam<cpu::AttentionShape> {};

TEST_P(CudaAttention, ForwardAndBackwardMatchCpu) {
  SKIP_WITHOUT_GPU();
  const cpu::AttentionShape s = GetParam();
  const int64_t rows = s.batch * s.seq;
  const Tensor q = random_tensor({rows, s.heads, s.qk_dim}, 1);
  const Tensor k = random_tensor({rows, s.heads, s.qk_dim}, 2);
  const Tensor v = random_tensor({rows, s.heads, s.v_dim}, 3);
  Tensor out = Tensor::empty({rows, s.heads, s.v_dim});
  Tensor lse = Tensor::empty({s.batch, s.heads, s.seq});
  cpu::attention_forward(s, q, k, v, out, lse);
  Tensor out_gpu = poisoned(out.shape());
  Tensor lse_gpu = poisoned(lse.shape());
  const Tensor q_gpu = gpu(q), k_gpu = gpu(k), v_gpu = gpu(v);
  cuda::attention_forward(s, q_gpu, k_gpu, v_gpu, out_gpu, lse_gpu);
  EXPECT_LE(gpu_error(out_gpu, out), kMatmulTolerance);
  EXPECT_LE(gpu_error(lse_gpu, lse), kMatmulTolerance);

  const Tensor dout = random_tensor(out.shape(), 4);
  Tensor dq = Tensor::empty(q.shape()), dk = Tensor::empty(k.shape()), dv = Tensor::empty(v.shape());
  cpu::attention_backward(s, dout, q, k, v, out, lse, dq, dk, dv);
  Tensor dq_gpu = poisoned(q.shape()), dk_gpu = poisoned(k.shape()), dv_gpu = poisoned(v.shape());
  cuda::attention_backward(s, gpu(dout), q_gpu, k_gpu, v_gpu, out_gpu, lse_gpu, dq_gpu, dk_gpu,
                           dv_gpu);
  EXPECT_LE(gpu_error(dq_gpu, dq), kMatmulTolerance);
  EXPECT_LE(gpu_error(dk_gpu, dk), kMatmulTolerance);
  EXPECT_LE(gpu_error(dv_gpu, dv), kMatmulTolerance);
}

cpu::AttentionShape shape(int64_t batch, int64_t seq, int64_t heads, int64_t qk, int64_t v) {
  cpu::AttentionShape s;
  s.batch = batch;
  s.seq = seq;
  s.heads = heads;
  s.qk_dim = qk;
  s.v_dim = v;
  s.scale = 1.0f / std::sqrt(static_cast<float>(qk));
  return s;
}

INSTANTIATE_TEST_SUITE_P(Shapes, CudaAttention,
                         ::testing::Values(shape(1, 1, 1, 4, 4), shape(2, 17, 3, 24, 16),
                                           shape(1, 70, 2, 192, 128), shape(3, 45, 4, 40, 72)));

}  // namespace
}  // namespace trident::cuda_test
