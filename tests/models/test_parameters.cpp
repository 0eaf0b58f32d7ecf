#include <gtest/gtest.h>

#include "models/deepseek_v3/parameters.h"
#include "runtime/core/rng.h"
#include "tests/models/test_configs.h"

namespace trident::models {
namespace {

TEST(ParameterStore, InitialisationFollowsTheContract) {
  const ParameterRegistry registry(testing::tiny_config());
  ParameterStore store(registry);
  store.initialize(1234);
  const float range = static_cast<float>(registry.config().initializer_range());

  const std::string name = "model.layers.1.self_attn.kv_b_proj.weight";
  const Tensor& w = store.value(name);
  const CounterRng rng(1234, stream_id(name));
  for (const int64_t i : {int64_t{0}, int64_t{1}, int64_t{17}, w.numel() - 1}) {
    EXPECT_EQ(w.item(i), range * rng.normal(static_cast<uint64_t>(i)));
  }
  for (int64_t i = 0; i < store.value("model.norm.weight").numel(); ++i) {
    EXPECT_EQ(store.value("model.norm.weight").item(i), 1.0f);
  }
  const Tensor& bias = store.value("model.layers.3.mlp.gate.e_score_correction_bias");
  for (int64_t i = 0; i < bias.numel(); ++i) EXPECT_EQ(bias.item(i), 0.0f);
  EXPECT_FALSE(store.get("model.layers.3.mlp.gate.e_score_correction_bias").grad.defined());
  EXPECT_TRUE(store.get("model.layers.3.mlp.gate.weight").grad.defined());
  EXPECT_EQ(store.numel(), registry.counts().total + registry.counts().mtp);
}

TEST(ParameterStore, ExpertBankViewsTheNamedExperts) {
  const ParameterRegistry registry(testing::tiny_config());
  ParameterStore store(registry);
  store.initialize(7);
  const ExpertBank bank = store.expert_bank(2, "down_proj");
  EXPECT_EQ(bank.value.shape(), (Shape{8, 32, 16}));
  const Tensor& expert5 = store.value("model.layers.2.mlp.experts.5.down_proj.weight");
  for (int64_t i = 0; i < expert5.numel(); ++i) {
    ASSERT_EQ(bank.value.item(5 * 32 * 16 + i), expert5.item(i));
  }
  // Gradients share the layout.
  store.grad("model.layers.2.mlp.experts.5.down_proj.weight").fill(3.0f);
  EXPECT_EQ(bank.grad.item(5 * 32 * 16), 3.0f);
  EXPECT_EQ(bank.grad.item(4 * 32 * 16), 0.0f);
}

// A shard initialises exactly its slice of the global tensor.
TEST(ParameterStore, ShardsInitialiseTheirSliceOfTheGlobalTensor) {
  const ParameterRegistry registry(testing::tiny_config());
  ParameterStore full(registry);
  full.initialize(99);
  ShardSelection selection;
  selection.tp_rank = 1;
  selection.tp_size = 2;
  selection.etp_rank = 1;
  selection.etp_size = 2;
  selection.ep_rank = 1;
  selection.ep_size = 4;
  selection.include = [](const ParamSpec& spec) { return spec.layer == 2 || spec.layer == -1; };
  ParameterStore shard(registry, selection);
  shard.initialize(99);

  EXPECT_FALSE(shard.has("model.layers.1.self_attn.o_proj.weight"));
  EXPECT_FALSE(shard.has("model.layers.2.mlp.experts.0.up_proj.weight"));
  EXPECT_TRUE(shard.has("model.layers.2.mlp.experts.2.up_proj.weight"));
  EXPECT_EQ(shard.expert_bank(2, "up_proj").first_expert, 2);
  EXPECT_EQ(shard.expert_bank(2, "up_proj").count, 2);

  int checked = 0;
  for (const Parameter& local : shard.parameters()) {
    const Tensor& global = full.value(local.spec->name);
    const Shape& shape = local.value.shape();
    const int64_t rows = shape[0];
    const int64_t cols = shape.size() > 1 ? shape[1] : 1;
    const int64_t global_cols = local.spec->shape.size() > 1 ? local.spec->shape[1] : 1;
    for (int64_t r = 0; r < rows; ++r) {
      for (int64_t c = 0; c < cols; ++c) {
        int64_t gr = r, gc = c;
        if (local.slice.dim == 0) gr += local.slice.begin;
        if (local.slice.dim == 1) gc += local.slice.begin;
        ASSERT_EQ(local.value.item(r * cols + c), global.item(gr * global_cols + gc))
            << local.spec->name;
      }
    }
    ++checked;
  }
  EXPECT_GT(checked, 10);
}

}  // namespace
}  // namespace trident::models
