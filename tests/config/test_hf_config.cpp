// Hugging Face config.json import and export.
#include <google/protobuf/util/message_differencer.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "runtime/config/config.h"
#include "runtime/core/error.h"
#include "tests/support/expect_user_error.h"

namespace trident::config {
namespace {

namespace fs = std::filesystem;

// Shaped like the published DeepSeek-V3 config.json, with keys Trident does not use
// (quantization_config, hidden_act, ...) and a null that must mean "default".
constexpr const char* kDeepSeekV3Json = R"({
  "architectures": ["DeepseekV3ForCausalLM"],
  "attention_bias": false,
  "attention_dropout": 0.0,
  "auto_map": {"AutoConfig": "configuration_deepseek.DeepseekV3Config"},
  "aux_loss_alpha": 0.001,
  "bos_token_id": 0,
  "eos_token_id": 1,
  "ep_size": 1,
  "first_k_dense_replace": 3,
  "hidden_act": "silu",
  "hidden_size": 7168,
  "initializer_range": 0.02,
  "intermediate_size": 18432,
  "kv_lora_rank": 512,
  "max_position_embeddings": 163840,
  "model_type": "deepseek_v3",
  "moe_intermediate_size": 2048,
  "moe_layer_freq": 1,
  "n_group": 8,
  "n_routed_experts": 256,
  "n_shared_experts": 1,
  "norm_topk_prob": true,
  "num_attention_heads": 128,
  "num_experts_per_tok": 8,
  "num_hidden_layers": 61,
  "num_key_value_heads": 128,
  "num_nextn_predict_layers": 1,
  "pretraining_tp": 1,
  "q_lora_rank": 1536,
  "qk_nope_head_dim": 128,
  "qk_rope_head_dim": 64,
  "quantization_config": {"activation_scheme": "dynamic", "fmt": "e4m3",
                          "quant_method": "fp8", "weight_block_size": [128, 128]},
  "rms_norm_eps": 1e-06,
  "rope_scaling": {
    "beta_fast": 32, "beta_slow": 1, "factor": 40, "mscale": 1.0, "mscale_all_dim": 1.0,
    "original_max_position_embeddings": 4096, "type": "yarn"
  },
  "rope_theta": 10000,
  "routed_scaling_factor": 2.5,
  "scoring_func": "sigmoid",
  "seq_aux": true,
  "tie_word_embeddings": false,
  "topk_group": 4,
  "topk_method": "noaux_tc",
  "torch_dtype": "bfloat16",
  "transformers_version": "4.33.1",
  "use_cache": true,
  "v_head_dim": 128,
  "vocab_size": 129280,
  "name": null
})";

class HfConfig : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("trident_hf_" + std::to_string(getpid()));
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::string write(const std::string& name, const std::string& text) const {
    const fs::path path = dir_ / name;
    std::ofstream(path) << text;
    return path.string();
  }
  fs::path dir_;
};

TEST_F(HfConfig, ImportsThePublishedConfig) {
  const ModelConfig model = import_hf_config(write("config.json", kDeepSeekV3Json));
  EXPECT_EQ(model.vocab_size(), 129280);
  EXPECT_EQ(model.hidden_size(), 7168);
  EXPECT_EQ(model.num_hidden_layers(), 61);
  EXPECT_EQ(model.kv_lora_rank(), 512);
  EXPECT_EQ(model.topk_method(), "noaux_tc");
  EXPECT_EQ(model.rms_norm_eps(), 1e-6);
  EXPECT_EQ(model.rope_theta(), 10000.0);  // an integer in JSON, a double in the schema
  EXPECT_EQ(model.initializer_range(), 0.02);
  EXPECT_EQ(model.rope_scaling().type(), "yarn");
  EXPECT_EQ(model.rope_scaling().factor(), 40.0);
  EXPECT_EQ(model.rope_scaling().original_max_position_embeddings(), 4096);
  EXPECT_EQ(model.rope_scaling().mscale_all_dim(), 1.0);
  EXPECT_EQ(model.torch_dtype(), "bfloat16");
  EXPECT_EQ(model.name(), default_config().model().name());  // null keeps the default
  TridentConfig config = default_config();
  *config.mutable_model() = model;
  EXPECT_NO_THROW(validate(config));
}

TEST_F(HfConfig, ExportThenImportGivesTheSameModel) {
  ModelConfig tiny = load_config(resolve_config_path("tiny")).model();
  tiny.set_rms_norm_eps(1.0 / 3.0);  // a value that needs all 17 digits
  const std::string json_text = export_hf_config_json(tiny);
  const nlohmann::json exported = nlohmann::json::parse(json_text);
  EXPECT_EQ(exported["architectures"][0], "DeepseekV3ForCausalLM");
  EXPECT_EQ(exported["model_type"], "deepseek_v3");
  EXPECT_EQ(exported["rope_scaling"]["type"], "yarn");
  EXPECT_EQ(exported["num_nextn_predict_layers"], 1);
  const ModelConfig back = import_hf_config(write("tiny.json", json_text));
  std::string diff;
  google::protobuf::util::MessageDifferencer differ;
  differ.ReportDifferencesToString(&diff);
  EXPECT_TRUE(differ.Compare(tiny, back)) << diff;

  const ModelConfig published = import_hf_config(write("config.json", kDeepSeekV3Json));
  const ModelConfig again = import_hf_config(write("again.json", export_hf_config_json(published)));
  EXPECT_TRUE(differ.Compare(published, again)) << diff;
}

TEST_F(HfConfig, PlainRopeExportsNullRopeScaling) {
  ModelConfig model = load_config(resolve_config_path("small")).model();
  ASSERT_EQ(model.rope_scaling().type(), "");
  const nlohmann::json exported = nlohmann::json::parse(export_hf_config_json(model));
  EXPECT_TRUE(exported["rope_scaling"].is_null());
  EXPECT_EQ(import_hf_config(write("small.json", exported.dump())).rope_scaling().type(), "");
}

TEST_F(HfConfig, RopeTypeKeyOfNewerTransformersIsAccepted) {
  const std::string path =
      write("c.json",
            R"({"model_type": "deepseek_v3", "rope_scaling": {"rope_type": "yarn", "factor": 8}})");
  const ModelConfig model = import_hf_config(path);
  EXPECT_EQ(model.rope_scaling().type(), "yarn");
  EXPECT_EQ(model.rope_scaling().factor(), 8.0);
}

// DeepSeek-V2's and V2-Lite's published config.json (tests/config/data/).
std::string v2_config(const std::string& name) {
  return std::string(TRIDENT_CONFIG_TEST_DATA) + "/" + name + "-config.json";
}

TEST_F(HfConfig, ImportsDeepSeekV2) {
  const ModelConfig model = import_hf_config(v2_config("deepseek-v2"));
  EXPECT_EQ(model.model_type(), "deepseek_v2");
  EXPECT_EQ(model.hidden_size(), 5120);
  EXPECT_EQ(model.num_hidden_layers(), 60);
  EXPECT_EQ(model.q_lora_rank(), 1536);
  EXPECT_EQ(model.n_routed_experts(), 160);
  EXPECT_EQ(model.n_shared_experts(), 2);
  EXPECT_EQ(model.scoring_func(), "softmax");
  EXPECT_EQ(model.topk_method(), "group_limited_greedy");
  EXPECT_EQ(model.n_group(), 8);
  EXPECT_EQ(model.topk_group(), 3);
  EXPECT_FALSE(model.norm_topk_prob());
  EXPECT_EQ(model.routed_scaling_factor(), 16.0);
  EXPECT_EQ(model.rope_scaling().mscale(), 0.707);
  EXPECT_EQ(model.num_nextn_predict_layers(), 0);  // V2 has no MTP (the key is absent)
  EXPECT_TRUE(model.seq_aux());
  TridentConfig config = default_config();
  *config.mutable_model() = model;
  EXPECT_NO_THROW(validate(config));
}

TEST_F(HfConfig, ImportsDeepSeekV2LiteWithoutQLora) {
  const ModelConfig lite = import_hf_config(v2_config("deepseek-v2-lite"));
  EXPECT_EQ(lite.q_lora_rank(), 0);  // null: a plain q_proj
  EXPECT_EQ(lite.topk_method(), "greedy");
  EXPECT_EQ(lite.n_routed_experts(), 64);
  EXPECT_EQ(lite.num_hidden_layers(), 27);
  const nlohmann::json exported = nlohmann::json::parse(export_hf_config_json(lite));
  EXPECT_EQ(exported["architectures"][0], "DeepseekV2ForCausalLM");
  EXPECT_EQ(exported["model_type"], "deepseek_v2");
  EXPECT_TRUE(exported["q_lora_rank"].is_null());
  const ModelConfig back = import_hf_config(write("lite.json", exported.dump()));
  std::string diff;
  google::protobuf::util::MessageDifferencer differ;
  differ.ReportDifferencesToString(&diff);
  EXPECT_TRUE(differ.Compare(lite, back)) << diff;
  // The preset has the same architecture (its initialisation follows the paper instead).
  ModelConfig preset = load_config(resolve_config_path("deepseek-v2-lite")).model();
  preset.set_name(lite.name());
  preset.set_initializer_range(lite.initializer_range());
  EXPECT_TRUE(differ.Compare(lite, preset)) << diff;
}

TEST_F(HfConfig, DeepSeekV2KeysLeftOutTakeV2Defaults) {
  const ModelConfig model =
      import_hf_config(write("sparse.json", R"({"model_type": "deepseek_v2", "hidden_size": 64})"));
  EXPECT_EQ(model.scoring_func(), "softmax");
  EXPECT_EQ(model.topk_method(), "greedy");
  EXPECT_FALSE(model.norm_topk_prob());
  EXPECT_EQ(model.routed_scaling_factor(), 1.0);
  EXPECT_EQ(model.num_nextn_predict_layers(), 0);
}

void expect_user_error(const std::string& path, const std::vector<std::string>& needles) {
  SCOPED_TRACE(path);
  trident::testing::expect_user_error([&] { import_hf_config(path); }, needles);
}

TEST_F(HfConfig, ClearErrors) {
  expect_user_error(write("llama.json", R"({"model_type": "llama", "hidden_size": 4096})"),
                    {"llama.json", "model_type", "\"llama\"", "deepseek_v3", "deepseek_v2"});
  expect_user_error(write("bad.json", R"({"hidden_size": "big"})"),
                    {"bad.json", "hidden_size", "must be an integer", "\"big\""});
  expect_user_error(write("frac.json", R"({"num_hidden_layers": 2.5})"),
                    {"num_hidden_layers", "must be an integer"});
  expect_user_error(write("rope.json", R"({"rope_scaling": {"factor": "x"}})"),
                    {"rope_scaling.factor", "must be a number"});
  expect_user_error(write("flag.json", R"({"norm_topk_prob": 1})"),
                    {"norm_topk_prob", "true or false"});
  expect_user_error(write("syntax.json", R"({"hidden_size": 7168,)"), {"syntax.json", "JSON"});
  // A number past double's range is an out_of_range, not a parse_error (a fuzz finding).
  expect_user_error(write("huge.json", R"({"rms_norm_eps": 1e10000})"),
                    {"huge.json", "not valid JSON", "1e10000"});
  expect_user_error(write("list.json", "[1, 2]"), {"list.json", "object"});
  expect_user_error((dir_ / "missing.json").string(), {"missing.json"});
}

}  // namespace
}  // namespace trident::config
