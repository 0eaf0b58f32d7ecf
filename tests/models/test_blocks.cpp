// Each block's backward (input and weight gradients) against central finite differences of
// L = <block(x), R> for a random R, so a wrong gradient is pinned to its block.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <functional>
#include <vector>

#include "models/deepseek_v3/model.h"
#include "runtime/core/rng.h"
#include "tests/models/test_configs.h"
#include "tests/support/directional_difference.h"

namespace trident::models {
namespace {

Tensor random_tensor(const Shape& shape, uint64_t seed, float scale = 1.0f) {
  const CounterRng rng(seed, stream_id("block-test"));
  std::vector<float> values(static_cast<size_t>(shape_numel(shape)));
  for (size_t i = 0; i < values.size(); ++i) values[i] = scale * rng.normal(i);
  return Tensor::from_vector(values, shape);
}

double dot(const Tensor& a, const Tensor& b) {
  double sum = 0.0;
  for (int64_t i = 0; i < a.numel(); ++i) sum += static_cast<double>(a.item(i)) * b.item(i);
  return sum;
}

struct BlockUnderTest {
  // Forward only; returns the block output for input x.
  std::function<Tensor(const Tensor& x)> forward;
  // Forward, backward_input (returns dx) and backward_weight, for output gradient dout.
  std::function<Tensor(const Tensor& x, const Tensor& dout)> backward;
  // Routing signature (empty for blocks without a router): FD must not flip it.
  std::function<std::vector<int32_t>(const Tensor& x)> routing;
};

// Directional FD checks on x and on every parameter that received gradient.
void check_block(DeepSeekV3Model& model, const BlockUnderTest& block, const Tensor& x,
                 const std::string& what) {
  const Tensor probe = block.forward(x);
  const Tensor r = random_tensor(probe.shape(), 99);
  model.params().zero_grad();
  const Tensor dx = block.backward(x, r);
  const std::vector<int32_t> routing = block.routing ? block.routing(x) : std::vector<int32_t>{};

  const CounterRng rng(5, stream_id(what));
  uint64_t draw = 0;
  constexpr float kStep = 1e-2f;
  auto directional_check = [&](float* values, const float* grad, int64_t n, const Tensor& input,
                               const std::string& name) {
    const trident::testing::Direction direction =
        trident::testing::random_direction(rng, draw, n, 6);
    const double analytic = direction.along(grad);
    // The block's output against R, and whether the routing stayed as it was.
    struct Side {
      bool same_routing;
      double value;
    };
    const auto [plus,
                minus] = trident::testing::evaluate_both_sides(values, n, direction, kStep, [&] {
      return Side{!block.routing || block.routing(input) == routing, dot(block.forward(input), r)};
    });
    if (!plus.same_routing || !minus.same_routing) return;
    const double numeric = (plus.value - minus.value) / (2.0 * kStep);
    EXPECT_NEAR(analytic, numeric, 1e-2 * std::abs(numeric) + 1e-3)
        << what << ": " << name << " analytic " << analytic << " numeric " << numeric;
  };

  Tensor x_copy = x.clone();
  for (int repeat = 0; repeat < 3; ++repeat) {
    directional_check(x_copy.data<float>(), dx.data<float>(), x_copy.numel(), x_copy, "input");
  }
  int checked = 0;
  for (Parameter& param : model.params().parameters()) {
    if (!param.grad.defined()) continue;
    const std::vector<float> g = param.grad.to_vector();
    double norm = 0.0;
    for (float v : g) norm += std::abs(v);
    if (norm == 0.0) continue;
    directional_check(param.value.data<float>(), g.data(), param.value.numel(), x,
                      param.spec->name);
    ++checked;
  }
  EXPECT_GT(checked, 3) << what;
}

class BlockGradients : public ::testing::Test {
 protected:
  BlockGradients() : model_(config(), 17), layout_(model_.sequence_layout(2, 6)) {}
  static config::ModelConfig config() {
    config::ModelConfig c = testing::tiny_config();
    c.set_initializer_range(0.2);
    return c;
  }
  Tensor input() const { return random_tensor({layout_.tokens(), model_.dims().hidden}, 3); }
  // Layer `index` as a whole, with no balance term (coefficient 0).
  BlockUnderTest decoder_layer(int index) const {
    const DecoderLayer& layer = model_.layer(index);
    BlockUnderTest block;
    block.forward = [this, &layer](const Tensor& x) {
      DecoderLayerContext ctx;
      return layer.forward(x, layout_, 0.0f, ctx);
    };
    block.backward = [this, &layer](const Tensor& x, const Tensor& dout) {
      DecoderLayerContext ctx;
      layer.forward(x, layout_, 0.0f, ctx);
      Tensor dx = layer.backward_input(dout, ctx);
      layer.backward_weight(ctx);
      return dx;
    };
    return block;
  }

  DeepSeekV3Model model_;
  SequenceLayout layout_;
  double last_balance_ = 0.0;
};

TEST_F(BlockGradients, Attention) {
  const MlaAttention& attention = model_.layer(1).attention();
  BlockUnderTest block;
  block.forward = [&](const Tensor& x) {
    MlaContext ctx;
    return attention.forward(x, layout_, ctx);
  };
  block.backward = [&](const Tensor& x, const Tensor& dout) {
    MlaContext ctx;
    attention.forward(x, layout_, ctx);
    Tensor dx = attention.backward_input(dout, ctx);
    attention.backward_weight(ctx);
    return dx;
  };
  check_block(model_, block, input(), "attention");
}

TEST_F(BlockGradients, MoeWithBalanceLoss) {
  const MoeLayer& moe = model_.layer(2).moe();
  constexpr float kCoef = 20.0f;  // large, so a wrong balance gradient cannot hide
  BlockUnderTest block;
  block.forward = [&](const Tensor& x) {
    MoeContext ctx;
    Tensor out = moe.forward(x, layout_, kCoef, ctx);
    // Fold the balance loss into the probe: <out, R> + coef · Σ L_bal must be what backward
    // differentiates. Adding it to one output entry whose R weight is known keeps <·, R> exact.
    last_balance_ = ctx.balance_sum;
    return out;
  };
  block.backward = [&](const Tensor& x, const Tensor& dout) {
    MoeContext ctx;
    moe.forward(x, layout_, kCoef, ctx);
    Tensor dx = moe.backward_input(dout, ctx);
    moe.backward_weight(ctx);
    return dx;
  };
  block.routing = [&](const Tensor& x) {
    MoeContext ctx;
    moe.forward(x, layout_, 0.0f, ctx);
    const int32_t* idx = ctx.indices.data<int32_t>();
    return std::vector<int32_t>(idx, idx + ctx.indices.numel());
  };
  // L = <out, R> + coef · balance: wrap forward so the probe includes the balance term.
  BlockUnderTest with_balance = block;
  with_balance.forward = [&](const Tensor& x) {
    Tensor out = block.forward(x);
    // <out', R> = <out, R> + coef · balance when out'[0] = out[0] + coef · balance / R[0].
    const Tensor r = random_tensor(out.shape(), 99);
    out.data<float>()[0] += static_cast<float>(kCoef * last_balance_ / r.item(0));
    return out;
  };
  check_block(model_, with_balance, input(), "moe");
}

TEST_F(BlockGradients, DenseDecoderLayer) {
  check_block(model_, decoder_layer(0), input(), "dense layer");
}

TEST_F(BlockGradients, MoeDecoderLayer) {
  BlockUnderTest block = decoder_layer(3);
  block.routing = [&](const Tensor& x) {
    DecoderLayerContext ctx;
    model_.layer(3).forward(x, layout_, 0.0f, ctx);
    const int32_t* idx = ctx.moe.indices.data<int32_t>();
    return std::vector<int32_t>(idx, idx + ctx.moe.indices.numel());
  };
  check_block(model_, block, input(), "moe layer");
}

}  // namespace
}  // namespace trident::models
