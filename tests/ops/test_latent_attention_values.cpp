// MLA decoding from the latent cache against attention over the expanded keys and values.
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <string>
#include <vector>

#include "ops/cpu/latent_attention.h"

namespace trident::ops::testing {
namespace {

using cpu::latent_attention_decode;

Tensor random_tensor(const Shape& shape, uint32_t seed) {
  std::mt19937 gen(seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<float> values(static_cast<size_t>(shape_numel(shape)));
  for (float& value : values) value = normal(gen);
  return Tensor::from_vector(values, shape);
}

struct DecodeInputs {
  Tensor q, q_rope, kv_b, latent, k_rope;
};

DecodeInputs random_inputs(const LatentAttentionShape& s, uint32_t seed) {
  return DecodeInputs{random_tensor({s.rows(), s.heads, s.qk_dim()}, seed),
                      random_tensor({s.rows(), s.heads, s.rope_dim}, seed + 1),
                      random_tensor({s.heads * (s.nope_dim + s.v_dim), s.kv_lora}, seed + 2),
                      random_tensor({s.batch, s.capacity, s.kv_lora}, seed + 3),
                      random_tensor({s.batch, s.capacity, s.rope_dim}, seed + 4)};
}

// Each cached position's key [W_k·latent, k_rope] and value W_v·latent made explicit, then plain
// causal softmax attention in double.
Tensor expanded_attention(const LatentAttentionShape& s, const DecodeInputs& in) {
  const int64_t dn = s.nope_dim, dr = s.rope_dim, dv = s.v_dim, rkv = s.kv_lora;
  Tensor out = Tensor::empty({s.rows(), s.heads * dv});
  for (int64_t row = 0; row < s.rows(); ++row) {
    const int64_t b = row / s.fresh;
    const int64_t position = s.start + row % s.fresh;
    for (int64_t h = 0; h < s.heads; ++h) {
      const auto weight = [&](int64_t r, int64_t c) {
        return static_cast<double>(in.kv_b.item((h * (dn + dv) + r) * rkv + c));
      };
      const auto latent = [&](int64_t t, int64_t c) {
        return static_cast<double>(in.latent.item((b * s.capacity + t) * rkv + c));
      };
      std::vector<double> score(static_cast<size_t>(position + 1));
      double max_score = -1e300;
      for (int64_t t = 0; t <= position; ++t) {
        double dot = 0.0;
        for (int64_t d = 0; d < dn; ++d) {
          double key = 0.0;
          for (int64_t c = 0; c < rkv; ++c) key += weight(d, c) * latent(t, c);
          dot += in.q.item((row * s.heads + h) * s.qk_dim() + d) * key;
        }
        for (int64_t j = 0; j < dr; ++j) {
          dot += static_cast<double>(in.q_rope.item((row * s.heads + h) * dr + j)) *
                 in.k_rope.item((b * s.capacity + t) * dr + j);
        }
        score[static_cast<size_t>(t)] = dot * s.scale;
        max_score = std::max(max_score, dot * s.scale);
      }
      double total = 0.0;
      for (double& value : score) total += (value = std::exp(value - max_score));
      for (int64_t j = 0; j < dv; ++j) {
        double acc = 0.0;
        for (int64_t t = 0; t <= position; ++t) {
          double value = 0.0;
          for (int64_t c = 0; c < rkv; ++c) value += weight(dn + j, c) * latent(t, c);
          acc += score[static_cast<size_t>(t)] / total * value;
        }
        out.data<float>()[(row * s.heads + h) * dv + j] = static_cast<float>(acc);
      }
    }
  }
  return out;
}

LatentAttentionShape shape_of(int64_t batch, int64_t fresh, int64_t start, int64_t capacity) {
  LatentAttentionShape s;
  s.batch = batch;
  s.fresh = fresh;
  s.start = start;
  s.capacity = capacity;
  s.heads = 3;
  s.nope_dim = 5;
  s.rope_dim = 4;
  s.v_dim = 6;
  s.kv_lora = 7;
  s.scale = 1.0f / std::sqrt(9.0f);
  return s;
}

TEST(LatentAttentionDecode, EqualsAttentionOverTheExpandedKeysAndValues) {
  // A prefill from position 0, a chunk after earlier positions, one token with spare capacity.
  for (const LatentAttentionShape& s :
       {shape_of(2, 6, 0, 6), shape_of(2, 3, 5, 11), shape_of(3, 1, 9, 16)}) {
    const DecodeInputs in = random_inputs(s, static_cast<uint32_t>(s.start + 10 * s.fresh));
    Tensor out = Tensor::full({s.rows(), s.heads * s.v_dim}, NAN);
    latent_attention_decode(s, in.q, in.q_rope, in.kv_b, in.latent, in.k_rope, out);
    EXPECT_LE(relative_error(out, expanded_attention(s, in)), 1e-6)
        << "batch " << s.batch << ", fresh " << s.fresh << ", start " << s.start;
  }
}

TEST(LatentAttentionDecode, Bf16WeightsAreReadAsTheirFp32Values) {
  const LatentAttentionShape s = shape_of(2, 2, 3, 8);
  DecodeInputs in = random_inputs(s, 77);
  const Tensor narrow = in.kv_b.to(DType::BF16);
  Tensor from_bf16 = Tensor::empty({s.rows(), s.heads * s.v_dim});
  latent_attention_decode(s, in.q, in.q_rope, narrow, in.latent, in.k_rope, from_bf16);
  Tensor from_widened = Tensor::empty({s.rows(), s.heads * s.v_dim});
  latent_attention_decode(s, in.q, in.q_rope, narrow.to(DType::F32), in.latent, in.k_rope,
                          from_widened);
  EXPECT_EQ(relative_error(from_bf16, from_widened), 0.0);
}

TEST(LatentAttentionDecode, PositionsBeyondTheCacheAreRefused) {
  const LatentAttentionShape fits = shape_of(1, 2, 4, 6);
  const DecodeInputs in = random_inputs(fits, 5);
  LatentAttentionShape beyond = fits;
  beyond.start = 5;  // positions 5 and 6 of a 6-position cache
  Tensor out = Tensor::empty({beyond.rows(), beyond.heads * beyond.v_dim});
  try {
    latent_attention_decode(beyond, in.q, in.q_rope, in.kv_b, in.latent, in.k_rope, out);
    FAIL() << "positions beyond the cache were accepted";
  } catch (const std::exception& e) {
    EXPECT_NE(std::string(e.what()).find("latent_attention_decode: positions up to 7"),
              std::string::npos)
        << e.what();
  }
}

}  // namespace
}  // namespace trident::ops::testing
