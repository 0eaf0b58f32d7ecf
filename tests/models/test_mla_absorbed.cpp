// The absorbed (decode) form of MLA against the expanded (training) form.
#include <gtest/gtest.h>

#include <vector>

#include "models/deepseek_v3/model.h"
#include "runtime/core/rng.h"
#include "tests/models/test_configs.h"

namespace trident::models {
namespace {

Tensor random_tensor(const Shape& shape, uint64_t seed) {
  const CounterRng rng(seed, stream_id("mla-input"));
  std::vector<float> values(static_cast<size_t>(shape_numel(shape)));
  for (size_t i = 0; i < values.size(); ++i) values[i] = rng.normal(i);
  return Tensor::from_vector(values, shape);
}

// Rows of `part` ([B · n, H], row b · n + i) written to positions [start, start + n) of
// `whole` ([B · S, H]).
void place(const Tensor& part, int64_t start, int64_t n, int64_t seq, Tensor& whole) {
  const int64_t H = part.size(1);
  const int64_t B = part.size(0) / n;
  for (int64_t b = 0; b < B; ++b) {
    for (int64_t i = 0; i < n; ++i) {
      for (int64_t h = 0; h < H; ++h) {
        whole.data<float>()[(b * seq + start + i) * H + h] =
            part.data<float>()[(b * n + i) * H + h];
      }
    }
  }
}

// Prefill of `prefill` tokens, then one token at a time, for B rows of S tokens.
Tensor decode_all(const std::function<Tensor(const Tensor&, int64_t)>& step, const Tensor& x,
                  int64_t B, int64_t S, int64_t prefill) {
  const int64_t H = x.size(1);
  Tensor out = Tensor::zeros({B * S, H});
  int64_t start = 0;
  while (start < S) {
    const int64_t n = start == 0 ? prefill : 1;
    Tensor chunk = Tensor::empty({B * n, H});
    for (int64_t b = 0; b < B; ++b) {
      for (int64_t i = 0; i < n; ++i) {
        for (int64_t h = 0; h < H; ++h) {
          chunk.data<float>()[(b * n + i) * H + h] = x.data<float>()[(b * S + start + i) * H + h];
        }
      }
    }
    place(step(chunk, n), start, n, S, out);
    start += n;
  }
  return out;
}

TEST(MlaAbsorbed, EqualsTheExpandedFormAtEveryPosition) {
  config::ModelConfig config = testing::tiny_config();
  config.set_initializer_range(0.2);
  DeepSeekV3Model model(config, 31);
  constexpr int64_t B = 2, S = 24;  // beyond YaRN's original 16 positions
  const SequenceLayout layout = model.sequence_layout(B, S);
  const Tensor x = random_tensor({B * S, model.dims().hidden}, 3);

  for (int64_t layer : {0, 3}) {
    const MlaAttention& attention = model.layer(layer).attention();
    MlaContext ctx;
    const Tensor expanded = attention.forward(x, layout, ctx);
    MlaCache cache(B, S, model.dims());
    const Tensor absorbed = decode_all(
        [&](const Tensor& chunk, int64_t n) {
          return attention.forward_absorbed(chunk, n, *layout.rope, cache);
        },
        x, B, S, /*prefill=*/5);
    EXPECT_EQ(cache.length, S);
    EXPECT_LE(relative_error(absorbed, expanded), 1e-5) << "layer " << layer;
  }
}

TEST(MlaAbsorbed, DecoderLayerDecodeMatchesTheTrainingForward) {
  config::ModelConfig config = testing::tiny_config();
  config.set_initializer_range(0.2);
  DeepSeekV3Model model(config, 32);
  constexpr int64_t B = 2, S = 12;
  const SequenceLayout layout = model.sequence_layout(B, S);
  const Tensor x = random_tensor({B * S, model.dims().hidden}, 4);
  for (int64_t layer : {1, 2}) {  // one dense, one MoE
    DecoderLayerContext ctx;
    const Tensor full = model.layer(layer).forward(x, layout, 0.0f, ctx);
    MlaCache cache(B, S, model.dims());
    const Tensor decoded = decode_all(
        [&](const Tensor& chunk, int64_t n) {
          return model.layer(layer).forward_decode(chunk, n, *layout.rope, cache);
        },
        x, B, S, /*prefill=*/3);
    EXPECT_LE(relative_error(decoded, full), 1e-5) << "layer " << layer;
  }
}

}  // namespace
}  // namespace trident::models
