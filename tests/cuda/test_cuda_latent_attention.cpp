// MLA decoding from the latent cache: the CUDA kernel against the CPU oracle, fp32 and bf16
// weights, DeepSeek-V3's widths (kv_lora 512, nope 128, rope 64, v 128) among them.
#include "ops/cpu/latent_attention.h"
#include "ops/cuda/latent_attention.h"
#include "tests/cuda/cuda_test_util.h"

namespace trident::cuda_test {
namespace {

ops::LatentAttentionShape shape(int64_t batch, int64_t fresh, int64_t start, int64_t capacity,
                                int64_t heads, int64_t nope, int64_t rope, int64_t v,
                                int64_t lora) {
  ops::LatentAttentionShape s;
  s.batch = batch;
  s.fresh = fresh;
  s.start = start;
  s.capacity = capacity;
  s.heads = heads;
  s.nope_dim = nope;
  s.rope_dim = rope;
  s.v_dim = v;
  s.kv_lora = lora;
  s.scale = 1.0f / std::sqrt(static_cast<float>(nope + rope));
  return s;
}

class CudaLatentAttention : public ::testing::TestWithParam<ops::LatentAttentionShape> {};

TEST_P(CudaLatentAttention, MatchesCpu) {
  SKIP_WITHOUT_GPU();
  const ops::LatentAttentionShape s = GetParam();
  const Tensor q = random_tensor({s.rows(), s.heads, s.qk_dim()}, 1);
  const Tensor q_rope = random_tensor({s.rows(), s.heads, s.rope_dim}, 2);
  const Tensor kv_b = random_tensor({s.heads * (s.nope_dim + s.v_dim), s.kv_lora}, 3, 0.05f);
  const Tensor latent = random_tensor({s.batch, s.capacity, s.kv_lora}, 4);
  const Tensor k_rope = random_tensor({s.batch, s.capacity, s.rope_dim}, 5);
  for (const DType weights : {DType::F32, DType::BF16}) {
    const Tensor w = weights == DType::F32 ? kv_b : kv_b.to(DType::BF16);
    EXPECT_LE(written_error(
                  {s.rows(), s.heads * s.v_dim},
                  [&](Tensor& out) {
                    cpu::latent_attention_decode(s, q, q_rope, w, latent, k_rope, out);
                  },
                  [&](Tensor& out) {
                    cuda::latent_attention_decode(s, gpu(q), gpu(q_rope), w.to(Device::CUDA),
                                                  gpu(latent), gpu(k_rope), out);
                  }),
              kMatmulTolerance)
        << (weights == DType::F32 ? "fp32" : "bf16") << " weights";
  }
}

INSTANTIATE_TEST_SUITE_P(Shapes, CudaLatentAttention,
                         ::testing::Values(shape(1, 1, 0, 1, 1, 4, 2, 4, 8),
                                           shape(2, 5, 3, 12, 3, 16, 8, 16, 32),
                                           shape(4, 1, 300, 512, 16, 128, 64, 128, 512),
                                           shape(2, 64, 0, 64, 8, 128, 64, 128, 512)));

}  // namespace
}  // namespace trident::cuda_test
