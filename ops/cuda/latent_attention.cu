#include "ops/cuda/kernel_utils.h"
#include "ops/cuda/latent_attention.h"

namespace trident::ops::cuda {
namespace {

using detail::kWarp;

constexpr int kThreads = 128;
constexpr int kWarps = kThreads / kWarp;

struct Geometry {
  int64_t heads, fresh, start, capacity, nope, rope, v, lora;
  float scale;
};

// Block = one (token row, head) pair; `weights` holds one float per cached position of the pair
// (scores, then their softmax numerators). Shared memory: the query in latent space and the
// softmax-weighted latent, kv_lora floats each.
template <typename Weight>
__global__ void decode_kernel(Geometry g, const float* q, const float* q_rope, const Weight* kv_b,
                              const float* cache_latent, const float* cache_k_rope, float* weights,
                              float* out) {
  extern __shared__ float shared[];
  float* q_latent = shared;             // [lora]
  float* out_latent = shared + g.lora;  // [lora]
  __shared__ float reduce[kWarps];
  const int64_t pair = blockIdx.x;
  const int64_t row = pair / g.heads;
  const int64_t h = pair % g.heads;
  const int64_t b = row / g.fresh;
  const int64_t position = g.start + row % g.fresh;
  const int64_t context = g.start + g.fresh;
  const Weight* w_k = kv_b + h * (g.nope + g.v) * g.lora;
  const Weight* w_v = w_k + g.nope * g.lora;
  const float* q_nope = q + (row * g.heads + h) * (g.nope + g.rope);
  const float* q_rot = q_rope + (row * g.heads + h) * g.rope;
  const float* latent = cache_latent + b * g.capacity * g.lora;
  const float* k_rope = cache_k_rope + b * g.capacity * g.rope;
  float* score = weights + pair * context;
  const int lane = threadIdx.x % kWarp;
  const int warp = threadIdx.x / kWarp;

  for (int64_t c = threadIdx.x; c < g.lora; c += blockDim.x) {
    float sum = 0.0f;
    for (int64_t d = 0; d < g.nope; ++d) sum += q_nope[d] * detail::load(w_k, d * g.lora + c);
    q_latent[c] = sum;
  }
  __syncthreads();

  float local_max = -INFINITY;
  for (int64_t t = warp; t <= position; t += kWarps) {
    float dot = 0.0f;
    for (int64_t c = lane; c < g.lora; c += kWarp) dot += q_latent[c] * latent[t * g.lora + c];
    for (int64_t j = lane; j < g.rope; j += kWarp) dot += q_rot[j] * k_rope[t * g.rope + j];
    dot = detail::warp_sum(dot) * g.scale;
    if (lane == 0) score[t] = dot;
    local_max = fmaxf(local_max, dot);
  }
  const float max_score = detail::block_max(local_max, reduce);  // syncs: scores are visible

  float local_total = 0.0f;
  for (int64_t t = threadIdx.x; t <= position; t += blockDim.x) {
    const float weight = __expf(score[t] - max_score);
    score[t] = weight;
    local_total += weight;
  }
  const float total = detail::block_sum(local_total, reduce);  // syncs: weights are visible

  for (int64_t c = threadIdx.x; c < g.lora; c += blockDim.x) {
    float sum = 0.0f;
    for (int64_t t = 0; t <= position; ++t) sum += score[t] * latent[t * g.lora + c];
    out_latent[c] = sum;
  }
  __syncthreads();

  float* out_row = out + (row * g.heads + h) * g.v;
  for (int64_t j = warp; j < g.v; j += kWarps) {
    float acc = 0.0f;
    for (int64_t c = lane; c < g.lora; c += kWarp)
      acc += detail::load(w_v, j * g.lora + c) * out_latent[c];
    acc = detail::warp_sum(acc);
    if (lane == 0) out_row[j] = acc / total;
  }
}

}  // namespace

void latent_attention_decode(const LatentAttentionShape& shape, const Tensor& q,
                             const Tensor& q_rope, const Tensor& kv_b, const Tensor& cache_latent,
                             const Tensor& cache_k_rope, Tensor& out, cudaStream_t stream) {
  check_latent_attention(shape, q, q_rope, kv_b, cache_latent, cache_k_rope, out);
  detail::expect_dtype(q, DType::F32, "latent_attention_decode q");
  detail::expect_dtype(q_rope, DType::F32, "latent_attention_decode q_rope");
  detail::expect_float_or_bf16(kv_b, "latent_attention_decode kv_b");
  detail::expect_dtype(cache_latent, DType::F32, "latent_attention_decode cache_latent");
  detail::expect_dtype(cache_k_rope, DType::F32, "latent_attention_decode cache_k_rope");
  detail::expect_dtype(out, DType::F32, "latent_attention_decode out");
  const int64_t pairs = shape.rows() * shape.heads;
  const int64_t context = shape.start + shape.fresh;
  const detail::StreamScratch weights(static_cast<size_t>(pairs * context) * sizeof(float), stream);
  const Geometry g{shape.heads,    shape.fresh, shape.start,   shape.capacity, shape.nope_dim,
                   shape.rope_dim, shape.v_dim, shape.kv_lora, shape.scale};
  const size_t shared = 2 * static_cast<size_t>(shape.kv_lora) * sizeof(float);
  float* scores = static_cast<float*>(weights.get());
  if (kv_b.dtype() == DType::BF16) {
    decode_kernel<<<static_cast<unsigned>(pairs), kThreads, shared, stream>>>(
        g, q.data<float>(), q_rope.data<float>(), detail::bf16_ptr(kv_b),
        cache_latent.data<float>(), cache_k_rope.data<float>(), scores, out.data<float>());
  } else {
    decode_kernel<<<static_cast<unsigned>(pairs), kThreads, shared, stream>>>(
        g, q.data<float>(), q_rope.data<float>(), kv_b.data<float>(), cache_latent.data<float>(),
        cache_k_rope.data<float>(), scores, out.data<float>());
  }
  TRIDENT_CHECK_LAUNCH();
}

}  // namespace trident::ops::cuda
