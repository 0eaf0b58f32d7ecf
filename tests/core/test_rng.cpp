#include <gtest/gtest.h>

#include <cmath>
#include <set>

#include "runtime/core/rng.h"

namespace trident {
namespace {

// The Random123 known-answer vector for Philox4x32-10 with counter and key all ones bits.
TEST(Philox, KnownAnswer) {
  const PhiloxBlock out = philox4x32({0xffffffffu, 0xffffffffu, 0xffffffffu, 0xffffffffu},
                                     0xffffffffffffffffull);
  EXPECT_EQ(out[0], 0x408f276du);
  EXPECT_EQ(out[1], 0x41c83b0eu);
  EXPECT_EQ(out[2], 0xa20bc7c6u);
  EXPECT_EQ(out[3], 0x6d5451fdu);
}

TEST(Philox, ZeroKnownAnswer) {
  const PhiloxBlock out = philox4x32({0, 0, 0, 0}, 0);
  EXPECT_EQ(out[0], 0x6627e8d5u);
  EXPECT_EQ(out[1], 0xe169c58du);
  EXPECT_EQ(out[2], 0xbc57ac4cu);
  EXPECT_EQ(out[3], 0x9b00dbd8u);
}

// A tensor of 6x8 split into shards (rows or columns, any way): each shard computes its
// values from global indices and the union equals the unsharded tensor exactly.
TEST(CounterRng, ShardInvariance) {
  const CounterRng rng(1234, stream_id("model.layers.3.self_attn.q_b_proj.weight"));
  const int rows = 6, cols = 8;
  std::vector<float> whole(rows * cols);
  for (int i = 0; i < rows * cols; ++i) whole[i] = rng.normal(static_cast<uint64_t>(i));

  for (int shards : {2, 4}) {
    // Column sharding (e.g. a row-parallel linear): shard s owns columns [s·c, (s+1)·c).
    const int shard_cols = cols / shards;
    for (int s = 0; s < shards; ++s) {
      const CounterRng shard_rng(1234, stream_id("model.layers.3.self_attn.q_b_proj.weight"));
      for (int r = 0; r < rows; ++r) {
        for (int c = 0; c < shard_cols; ++c) {
          const uint64_t global = static_cast<uint64_t>(r * cols + s * shard_cols + c);
          EXPECT_EQ(shard_rng.normal(global), whole[global]);
        }
      }
    }
  }
}

TEST(CounterRng, StreamsAndSeedsDiffer) {
  const CounterRng a(1, stream_id("a")), b(1, stream_id("b")), a2(2, stream_id("a"));
  int same_stream = 0, same_seed = 0;
  for (uint64_t i = 0; i < 1000; ++i) {
    same_stream += a.bits(i) == b.bits(i);
    same_seed += a.bits(i) == a2.bits(i);
  }
  EXPECT_LT(same_stream, 3);
  EXPECT_LT(same_seed, 3);
}

TEST(CounterRng, NormalMoments) {
  const CounterRng rng(7, stream_id("moments"));
  const int n = 200000;
  double sum = 0, sum_sq = 0;
  for (int i = 0; i < n; ++i) {
    const double v = rng.normal(static_cast<uint64_t>(i));
    ASSERT_TRUE(std::isfinite(v));
    sum += v;
    sum_sq += v * v;
  }
  const double mean = sum / n, var = sum_sq / n - mean * mean;
  EXPECT_NEAR(mean, 0.0, 0.01);
  EXPECT_NEAR(var, 1.0, 0.02);
  for (int i = 0; i < 1000; ++i) {
    const float u = rng.uniform(static_cast<uint64_t>(i));
    EXPECT_GT(u, 0.0f);
    EXPECT_LT(u, 1.0f);
  }
}

}  // namespace
}  // namespace trident
