// MLA decoding from the latent cache, with kv_b_proj absorbed: per (token, head) the query is
// taken into the latent space once, scored against the cached latents and rope keys, and the
// softmax-weighted latent is expanded by the value rows. Sums in double: this is the oracle the
// CUDA kernel and the expanded (training) attention are compared with.
#include "ops/cpu/latent_attention.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "ops/cpu/detail.h"
#include "runtime/core/profiler.h"

namespace trident::ops::cpu {
namespace {

// Per-thread working vectors, sized once per call.
struct DecodeScratch {
  std::vector<double> q_latent;
  std::vector<double> score;
  std::vector<double> out_latent;
};

struct DecodeOperands {
  const float* q;
  const float* q_rope;
  const float* kv_b;
  const float* latent;
  const float* k_rope;
  float* out;
};

void decode_one(const LatentAttentionShape& s, const DecodeOperands& o, int64_t row, int64_t h,
                DecodeScratch& scratch) {
  const int64_t dn = s.nope_dim, dr = s.rope_dim, dv = s.v_dim, rkv = s.kv_lora;
  const int64_t b = row / s.fresh;
  const int64_t position = s.start + row % s.fresh;
  const float* w_k = o.kv_b + h * (dn + dv) * rkv;  // [dn, rkv]
  const float* w_v = w_k + dn * rkv;                // [dv, rkv]
  const float* q_nope = o.q + (row * s.heads + h) * s.qk_dim();
  const float* q_rot = o.q_rope + (row * s.heads + h) * dr;
  const float* latent = o.latent + b * s.capacity * rkv;
  const float* k_rope = o.k_rope + b * s.capacity * dr;

  std::vector<double>& q_latent = scratch.q_latent;
  std::fill(q_latent.begin(), q_latent.end(), 0.0);
  for (int64_t d = 0; d < dn; ++d) {
    const double qd = q_nope[d];
    for (int64_t c = 0; c < rkv; ++c) q_latent[static_cast<size_t>(c)] += qd * w_k[d * rkv + c];
  }
  double max_score = -std::numeric_limits<double>::infinity();
  for (int64_t t = 0; t <= position; ++t) {
    double dot = 0.0;
    for (int64_t c = 0; c < rkv; ++c) dot += q_latent[static_cast<size_t>(c)] * latent[t * rkv + c];
    for (int64_t j = 0; j < dr; ++j) dot += static_cast<double>(q_rot[j]) * k_rope[t * dr + j];
    const double score = dot * s.scale;
    scratch.score[static_cast<size_t>(t)] = score;
    max_score = std::max(max_score, score);
  }
  std::vector<double>& out_latent = scratch.out_latent;
  std::fill(out_latent.begin(), out_latent.end(), 0.0);
  double total = 0.0;
  for (int64_t t = 0; t <= position; ++t) {
    const double weight = std::exp(scratch.score[static_cast<size_t>(t)] - max_score);
    total += weight;
    for (int64_t c = 0; c < rkv; ++c)
      out_latent[static_cast<size_t>(c)] += weight * latent[t * rkv + c];
  }
  float* out = o.out + (row * s.heads + h) * dv;
  for (int64_t j = 0; j < dv; ++j) {
    double acc = 0.0;
    for (int64_t c = 0; c < rkv; ++c) acc += w_v[j * rkv + c] * out_latent[static_cast<size_t>(c)];
    out[j] = static_cast<float>(acc / total);
  }
}

}  // namespace

void latent_attention_decode(const LatentAttentionShape& shape, const Tensor& q,
                             const Tensor& q_rope, const Tensor& kv_b, const Tensor& cache_latent,
                             const Tensor& cache_k_rope, Tensor& out) {
  TRIDENT_PROFILE_SCOPE("latent_attention_decode");
  check_latent_attention(shape, q, q_rope, kv_b, cache_latent, cache_k_rope, out);
  detail::check_f32(q, "latent_attention_decode q");
  detail::check_f32(q_rope, "latent_attention_decode q_rope");
  detail::check_f32(cache_latent, "latent_attention_decode cache_latent");
  detail::check_f32(cache_k_rope, "latent_attention_decode cache_k_rope");
  detail::check_f32(out, "latent_attention_decode out");
  const detail::Fp32Values weights(kv_b, "latent_attention_decode kv_b");
  const DecodeOperands operands{q.data<float>(),
                                q_rope.data<float>(),
                                weights.data(),
                                cache_latent.data<float>(),
                                cache_k_rope.data<float>(),
                                out.data<float>()};
  const int64_t pairs = shape.rows() * shape.heads;
  const int64_t context = shape.start + shape.fresh;
  // Each (token, head) is independent and costs O(context · kv_lora): worth a thread per pair
  // as soon as there are two.
#pragma omp parallel if (pairs > 1)
  {
    DecodeScratch scratch{std::vector<double>(static_cast<size_t>(shape.kv_lora)),
                          std::vector<double>(static_cast<size_t>(context)),
                          std::vector<double>(static_cast<size_t>(shape.kv_lora))};
#pragma omp for schedule(static)
    for (int64_t pair = 0; pair < pairs; ++pair) {
      decode_one(shape, operands, pair / shape.heads, pair % shape.heads, scratch);
    }
  }
}

}  // namespace trident::ops::cpu
