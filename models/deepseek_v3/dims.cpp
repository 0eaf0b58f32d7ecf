#include "models/deepseek_v3/dims.h"

#include <algorithm>
#include <cmath>

namespace trident::models {

BalanceSettings balance_settings(const config::ModelConfig& c) {
  BalanceSettings b;
  b.device_weight = c.device_balance_weight();
  b.comm_weight = c.comm_balance_weight();
  b.devices = c.n_group() > 0 ? c.n_group() : 1;
  const bool group_limited = c.topk_method() != "greedy" && c.topk_group() > 0;
  b.max_devices = group_limited ? std::min(c.topk_group(), b.devices)
                                : std::min(c.num_experts_per_tok(), b.devices);
  b.max_devices = std::max<int64_t>(b.max_devices, 1);
  return b;
}

ModelDims model_dims(const config::ModelConfig& c) {
  ModelDims d;
  d.vocab = c.vocab_size();
  d.hidden = c.hidden_size();
  d.layers = c.num_hidden_layers();
  d.heads = c.num_attention_heads();
  d.q_lora = c.q_lora_rank();
  d.kv_lora = c.kv_lora_rank();
  d.nope = c.qk_nope_head_dim();
  d.rope = c.qk_rope_head_dim();
  d.v_dim = c.v_head_dim();
  d.qk_dim = d.nope + d.rope;
  d.dense_ffn = c.intermediate_size();
  d.expert_ffn = c.moe_intermediate_size();
  d.experts = c.n_routed_experts();
  d.shared_experts = c.n_shared_experts();
  d.top_k = c.num_experts_per_tok();
  d.mtp_depth = c.num_nextn_predict_layers();
  d.eps = static_cast<float>(c.rms_norm_eps() > 0 ? c.rms_norm_eps() : 1e-6);

  d.yarn.theta = c.rope_theta() > 0 ? c.rope_theta() : 10000.0;
  const bool yarn = c.rope_scaling().type() == "yarn" && c.rope_scaling().factor() > 1.0;
  double mscale = 1.0;
  if (yarn) {
    const auto& r = c.rope_scaling();
    d.yarn.factor = r.factor();
    d.yarn.original_max_position = r.original_max_position_embeddings();
    d.yarn.beta_fast = r.beta_fast();
    d.yarn.beta_slow = r.beta_slow();
    d.yarn.mscale = r.mscale();
    d.yarn.mscale_all_dim = r.mscale_all_dim();
    if (r.mscale_all_dim() > 0) mscale = ops::yarn_mscale(r.factor(), r.mscale_all_dim());
  }
  d.softmax_scale = static_cast<float>(mscale * mscale / std::sqrt(static_cast<double>(d.qk_dim)));

  d.router.experts = d.experts;
  d.router.top_k = d.top_k;
  const bool grouped = c.topk_method() != "greedy";
  d.router.n_group = grouped && c.n_group() > 0 ? c.n_group() : 1;
  d.router.topk_group = grouped && c.topk_group() > 0 ? c.topk_group() : d.router.n_group;
  d.router.group_top = c.topk_method() == "group_limited_greedy" ? 1 : 2;
  d.router.scaling =
      static_cast<float>(c.routed_scaling_factor() > 0 ? c.routed_scaling_factor() : 1.0);
  d.router.normalize = c.norm_topk_prob();
  // DeepSeek-V2's gate either normalises the top-k weights (top_k > 1 with norm_topk_prob) or
  // scales them by routed_scaling_factor, never both; V3 normalises, then scales.
  if (c.model_type() == "deepseek_v2") {
    d.router.normalize = c.norm_topk_prob() && d.top_k > 1;
    if (d.router.normalize) d.router.scaling = 1.0f;
  }
  d.router.sigmoid = c.scoring_func() != "softmax";
  d.has_router_bias = c.topk_method() == "noaux_tc";
  d.balance = balance_settings(c);
  return d;
}

}  // namespace trident::models
