#include <gtest/gtest.h>

#include <set>

#include "models/deepseek_v3/registry.h"
#include "runtime/config/config.h"
#include "tests/models/test_configs.h"

namespace trident::models {
namespace {

TEST(Registry, DeepSeekV3CountsMatchThePublishedFigures) {
  const ParameterRegistry registry(testing::deepseek_v3_671b_config());
  const ParameterCounts counts = registry.counts();
  EXPECT_EQ(counts.total, 671'026'419'200);
  EXPECT_EQ(counts.activated, 37'552'297'472);
  EXPECT_EQ(counts.mtp, 11'610'068'224);
  EXPECT_EQ(counts.embedding, 926'679'040);
  EXPECT_EQ(counts.head, 926'679'040);
  EXPECT_EQ(registry.attention_parameters(0), 187'107'328);
  EXPECT_EQ(registry.attention_parameters(60), 187'107'328);
  EXPECT_EQ(registry.layer_parameters(0), 583'483'392);
  EXPECT_EQ(registry.layer_parameters(2), 583'483'392);
  EXPECT_EQ(registry.layer_parameters(3), 11'507'286'272);
  EXPECT_EQ(registry.layer_parameters(60), 11'507'286'272);
  // The MTP decoder layer alone is a full MoE layer.
  EXPECT_EQ(registry.layer_parameters(61), 11'507'286'272);
  // Router biases are buffers: counted, never trained.
  EXPECT_EQ(counts.trained, counts.total + counts.mtp - 59 * 256);
}

// The shipped presets agree with the hand-built configs of these tests.
TEST(Registry, PresetsMatchTheHandBuiltConfigs) {
  const config::ModelConfig full =
      config::load_config(config::resolve_config_path("deepseek-v3-671b")).model();
  const ParameterCounts counts = ParameterRegistry(full).counts();
  EXPECT_EQ(counts.total, 671'026'419'200);
  EXPECT_EQ(counts.activated, 37'552'297'472);
  EXPECT_EQ(counts.mtp, 11'610'068'224);
  const config::ModelConfig tiny = config::load_config(config::resolve_config_path("tiny")).model();
  EXPECT_EQ(tiny.SerializeAsString(), testing::tiny_config().SerializeAsString());
}

// DeepSeek-V2 (236B) and V2-Lite: the counts of tests/config/check_v2_counts.py's independent
// formula over the published config.json (the embedding counts as activated; the V2 report's
// "2.4B activated" for V2-Lite leaves it out: 2,661,150,208 − 209,715,200 = 2,451,435,008).
TEST(Registry, DeepSeekV2CountsMatchTheIndependentFormula) {
  const ParameterCounts v2 =
      ParameterRegistry(config::load_config(config::resolve_config_path("deepseek-v2")).model())
          .counts();
  EXPECT_EQ(v2.total, 235'741'434'880);
  EXPECT_EQ(v2.activated, 21'375'800'320);
  EXPECT_EQ(v2.mtp, 0);
  EXPECT_EQ(v2.trained, v2.total);  // no router-bias buffers
  const config::ModelConfig lite_config =
      config::load_config(config::resolve_config_path("deepseek-v2-lite")).model();
  const ParameterRegistry lite(lite_config);
  EXPECT_EQ(lite.counts().total, 15'706'484'224);
  EXPECT_EQ(lite.counts().activated, 2'661'150'208);
  EXPECT_EQ(lite.counts().embedding, 209'715'200);
  // No q-LoRA: one q_proj [heads · (nope + rope), hidden], split by heads under TP.
  const ParamSpec& q = lite.spec("model.layers.1.self_attn.q_proj.weight");
  EXPECT_EQ(q.shape, (Shape{16 * 192, 2048}));
  EXPECT_EQ(q.placement.tp, TpSplit::kColumn);
  EXPECT_FALSE(lite.contains("model.layers.1.self_attn.q_a_proj.weight"));
  EXPECT_FALSE(lite.contains("model.layers.1.mlp.gate.e_score_correction_bias"));
  EXPECT_EQ(lite.spec("model.layers.1.mlp.shared_experts.down_proj.weight").shape,
            (Shape{2048, 2 * 1408}));
  EXPECT_FALSE(lite.contains("model.layers.27.eh_proj.weight"));  // no MTP module
}

TEST(Registry, NamesShapesAndFlags) {
  const ParameterRegistry registry(testing::deepseek_v3_671b_config());
  const ParamSpec& q_b = registry.spec("model.layers.5.self_attn.q_b_proj.weight");
  EXPECT_EQ(q_b.shape, (Shape{128 * 192, 1536}));
  EXPECT_EQ(q_b.kind, ParamKind::kAttention);
  EXPECT_EQ(q_b.placement.tp, TpSplit::kColumn);
  EXPECT_TRUE(q_b.weight_decay);

  const ParamSpec& bias = registry.spec("model.layers.3.mlp.gate.e_score_correction_bias");
  EXPECT_EQ(bias.kind, ParamKind::kRouterBias);
  EXPECT_FALSE(bias.trained);
  EXPECT_FALSE(bias.weight_decay);

  const ParamSpec& norm = registry.spec("model.layers.3.input_layernorm.weight");
  EXPECT_TRUE(norm.trained);
  EXPECT_FALSE(norm.weight_decay);

  const ParamSpec& expert = registry.spec("model.layers.7.mlp.experts.200.down_proj.weight");
  EXPECT_EQ(expert.shape, (Shape{7168, 2048}));
  EXPECT_EQ(expert.expert, 200);
  EXPECT_EQ(expert.layer, 7);
  EXPECT_EQ(expert.placement.tp, TpSplit::kRow);
  EXPECT_EQ(ep_owner(expert, 64), 50);
  EXPECT_TRUE(held_by_ep_rank(expert, 50, 64));
  EXPECT_FALSE(held_by_ep_rank(expert, 49, 64));
  EXPECT_TRUE(held_by_ep_rank(norm, 49, 64));

  const ParamSpec& eh = registry.spec("model.layers.61.eh_proj.weight");
  EXPECT_EQ(eh.shape, (Shape{7168, 2 * 7168}));
  EXPECT_EQ(eh.mtp_depth, 1);
  EXPECT_EQ(eh.kind, ParamKind::kMtpProjection);
  EXPECT_EQ(registry.spec("model.layers.61.mlp.experts.0.up_proj.weight").mtp_depth, 1);
  EXPECT_FALSE(registry.contains("model.layers.2.mlp.gate.weight"));
  EXPECT_TRUE(registry.contains("model.layers.2.mlp.down_proj.weight"));

  std::set<std::string> names;
  for (const ParamSpec& spec : registry.specs()) names.insert(spec.name);
  EXPECT_EQ(names.size(), registry.specs().size());
}

TEST(Registry, TensorParallelSlices) {
  const ParameterRegistry registry(testing::deepseek_v3_671b_config());
  const ParamSpec& o = registry.spec("model.layers.0.self_attn.o_proj.weight");
  EXPECT_EQ(local_shape(o, 3, 8), (Shape{7168, 2048}));
  const ParamSpec& embed = registry.spec("model.embed_tokens.weight");
  EXPECT_EQ(local_shape(embed, 1, 8), (Shape{16160, 7168}));
  const ParamSpec& kv_a = registry.spec("model.layers.0.self_attn.kv_a_proj_with_mqa.weight");
  EXPECT_EQ(local_shape(kv_a, 1, 8), kv_a.shape);
  EXPECT_THROW(local_shape(embed, 0, 7), UserError);
}

TEST(Registry, GlobalIndexOfShardElements) {
  ParamSpec spec;
  spec.name = "w";
  spec.shape = {4, 6};
  // Row split: rank 1 of 2 holds columns 3..5; its local element (r, c) is global (r, 3 + c).
  spec.placement.tp = TpSplit::kRow;
  const ShardSlice row = tp_slice(spec, 1, 2);
  EXPECT_EQ(global_index(spec, row, 0), 3);
  EXPECT_EQ(global_index(spec, row, 4), 1 * 6 + 3 + 1);
  spec.placement.tp = TpSplit::kColumn;
  const ShardSlice column = tp_slice(spec, 1, 2);
  EXPECT_EQ(global_index(spec, column, 0), 12);
  EXPECT_EQ(global_index(spec, column, 7), 12 + 7);
}

TEST(Registry, TinyModelLayout) {
  const ParameterRegistry registry(testing::tiny_config());
  EXPECT_TRUE(registry.contains("model.layers.1.mlp.gate_proj.weight"));
  EXPECT_TRUE(registry.contains("model.layers.2.mlp.experts.7.gate_proj.weight"));
  EXPECT_TRUE(registry.contains("model.layers.4.mlp.shared_experts.down_proj.weight"));
  EXPECT_TRUE(registry.contains("model.layers.4.shared_head.norm.weight"));
  EXPECT_FALSE(registry.contains("model.layers.5.enorm.weight"));
}

TEST(Registry, RejectsImpossibleConfigs) {
  config::ModelConfig bad = testing::tiny_config();
  bad.set_n_group(3);
  EXPECT_THROW(ParameterRegistry{bad}, UserError);
  bad = testing::tiny_config();
  bad.set_qk_rope_head_dim(5);
  EXPECT_THROW(ParameterRegistry{bad}, UserError);
}

}  // namespace
}  // namespace trident::models
