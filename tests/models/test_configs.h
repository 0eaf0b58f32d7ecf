#pragma once
// Model configurations for the model tests: the published 671B shape (for exact
// parameter counts) and the tiny model of docs/model.md (for gradient checks in milliseconds),
// also in a DeepSeek-V2 form.
#include <string>
#include <vector>

#include "runtime/config/config.h"
#include "runtime/config/trident.pb.h"

namespace trident::models::testing {

// The published 671B shape. DeepSeek-V3's architecture is the model default
// (runtime/config/defaults.cpp); the release adds YaRN to 160K positions and ships bf16 weights.
inline config::ModelConfig deepseek_v3_671b_config() {
  config::ModelConfig c = config::default_config().model();
  c.set_name("deepseek-v3-671b");
  auto* yarn = c.mutable_rope_scaling();
  yarn->set_type("yarn");
  yarn->set_factor(40);
  yarn->set_mscale_all_dim(1);
  c.set_max_position_embeddings(163840);
  c.set_torch_dtype("bfloat16");
  return c;
}

// The tiny model of docs/model.md: 4 layers (2 dense), 8 routed experts + 1 shared, MTP depth 1.
// It keeps the 671B model's routing, norms and YaRN and shrinks every size.
inline config::ModelConfig tiny_config() {
  config::ModelConfig c = deepseek_v3_671b_config();
  c.set_name("tiny");
  c.set_vocab_size(256);
  c.set_hidden_size(32);
  c.set_intermediate_size(48);
  c.set_moe_intermediate_size(16);
  c.set_num_hidden_layers(4);
  c.set_first_k_dense_replace(2);
  c.set_num_attention_heads(4);
  c.set_q_lora_rank(16);
  c.set_kv_lora_rank(16);
  c.set_qk_nope_head_dim(8);
  c.set_qk_rope_head_dim(4);
  c.set_v_head_dim(8);
  c.set_n_routed_experts(8);
  c.set_num_experts_per_tok(2);
  c.set_n_group(4);
  c.set_topk_group(2);
  auto* yarn = c.mutable_rope_scaling();
  yarn->set_factor(4);
  yarn->set_original_max_position_embeddings(16);
  c.set_max_position_embeddings(64);
  c.set_initializer_range(0.02);
  c.set_torch_dtype("float32");
  return c;
}

// The tiny model as a DeepSeek-V2 (--set overrides on top of tiny): softmax routing with
// `topk_method` (group_limited_greedy or greedy), top-3 (more than the 2 groups a token may use,
// so the group limit changes the choice), no q-LoRA (a plain q_proj), 2 shared experts, V2's
// weighting (not normalised, scaled by 1.5), no MTP, and the device-level and communication
// balance losses on.
inline std::vector<std::string> tiny_v2_overrides(
    const std::string& topk_method = "group_limited_greedy") {
  return {"model.model_type=deepseek_v2",
          "model.scoring_func=softmax",
          "model.topk_method=" + topk_method,
          "model.num_experts_per_tok=3",
          "model.q_lora_rank=0",
          "model.n_shared_experts=2",
          "model.norm_topk_prob=false",
          "model.routed_scaling_factor=1.5",
          "model.num_nextn_predict_layers=0",
          "model.device_balance_weight=0.5",
          "model.comm_balance_weight=0.25"};
}

inline config::ModelConfig tiny_v2_config(const std::string& topk_method = "group_limited_greedy") {
  config::TridentConfig config;
  *config.mutable_model() = tiny_config();
  config::apply_overrides(config, tiny_v2_overrides(topk_method));
  return config.model();
}

}  // namespace trident::models::testing
