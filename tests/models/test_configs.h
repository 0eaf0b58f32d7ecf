#pragma once
// Model configurations built by hand for the model tests: the published 671B shape (for exact
// parameter counts) and the tiny model of docs/model.md (for gradient checks in milliseconds),
// also in a DeepSeek-V2 form.
#include <string>
#include <vector>

#include "runtime/config/config.h"
#include "runtime/config/trident.pb.h"

namespace trident::models::testing {

inline config::ModelConfig deepseek_v3_671b_config() {
  config::ModelConfig c;
  c.set_name("deepseek-v3-671b");
  c.set_vocab_size(129280);
  c.set_hidden_size(7168);
  c.set_intermediate_size(18432);
  c.set_moe_intermediate_size(2048);
  c.set_num_hidden_layers(61);
  c.set_first_k_dense_replace(3);
  c.set_moe_layer_freq(1);
  c.set_num_attention_heads(128);
  c.set_q_lora_rank(1536);
  c.set_kv_lora_rank(512);
  c.set_qk_nope_head_dim(128);
  c.set_qk_rope_head_dim(64);
  c.set_v_head_dim(128);
  c.set_n_routed_experts(256);
  c.set_n_shared_experts(1);
  c.set_num_experts_per_tok(8);
  c.set_n_group(8);
  c.set_topk_group(4);
  c.set_routed_scaling_factor(2.5);
  c.set_scoring_func("sigmoid");
  c.set_topk_method("noaux_tc");
  c.set_norm_topk_prob(true);
  c.set_rms_norm_eps(1e-6);
  c.set_rope_theta(10000);
  auto* yarn = c.mutable_rope_scaling();
  yarn->set_type("yarn");
  yarn->set_factor(40);
  yarn->set_original_max_position_embeddings(4096);
  yarn->set_beta_fast(32);
  yarn->set_beta_slow(1);
  yarn->set_mscale(1);
  yarn->set_mscale_all_dim(1);
  c.set_max_position_embeddings(163840);
  c.set_num_nextn_predict_layers(1);
  c.set_initializer_range(0.006);
  c.set_torch_dtype("bfloat16");
  c.set_model_type("deepseek_v3");
  c.set_seq_aux(true);
  return c;
}

// The tiny model of docs/model.md: 4 layers (2 dense), 8 routed experts + 1 shared, MTP depth 1.
inline config::ModelConfig tiny_config() {
  config::ModelConfig c;
  c.set_name("tiny");
  c.set_vocab_size(256);
  c.set_hidden_size(32);
  c.set_intermediate_size(48);
  c.set_moe_intermediate_size(16);
  c.set_num_hidden_layers(4);
  c.set_first_k_dense_replace(2);
  c.set_moe_layer_freq(1);
  c.set_num_attention_heads(4);
  c.set_q_lora_rank(16);
  c.set_kv_lora_rank(16);
  c.set_qk_nope_head_dim(8);
  c.set_qk_rope_head_dim(4);
  c.set_v_head_dim(8);
  c.set_n_routed_experts(8);
  c.set_n_shared_experts(1);
  c.set_num_experts_per_tok(2);
  c.set_n_group(4);
  c.set_topk_group(2);
  c.set_routed_scaling_factor(2.5);
  c.set_scoring_func("sigmoid");
  c.set_topk_method("noaux_tc");
  c.set_norm_topk_prob(true);
  c.set_rms_norm_eps(1e-6);
  c.set_rope_theta(10000);
  auto* yarn = c.mutable_rope_scaling();
  yarn->set_type("yarn");
  yarn->set_factor(4);
  yarn->set_original_max_position_embeddings(16);
  yarn->set_beta_fast(32);
  yarn->set_beta_slow(1);
  yarn->set_mscale(1);
  yarn->set_mscale_all_dim(1);
  c.set_max_position_embeddings(64);
  c.set_num_nextn_predict_layers(1);
  c.set_initializer_range(0.02);
  c.set_torch_dtype("float32");
  c.set_model_type("deepseek_v3");
  c.set_seq_aux(true);
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
