// The model's own consistency: shapes, router grouping, RoPE/YaRN, dtypes.
#include "runtime/config/problems.h"

namespace trident::config::detail {

void check_model(const ModelConfig& m, Problems& p) {
  p.require(m.vocab_size() >= 1, "model.vocab_size = ", m.vocab_size(), " must be ≥ 1");
  p.require(m.hidden_size() >= 1, "model.hidden_size = ", m.hidden_size(), " must be ≥ 1");
  p.require(m.intermediate_size() >= 1, "model.intermediate_size = ", m.intermediate_size(),
            " must be ≥ 1");
  p.require(m.moe_intermediate_size() >= 1,
            "model.moe_intermediate_size = ", m.moe_intermediate_size(), " must be ≥ 1");
  p.require(m.num_hidden_layers() >= 1, "model.num_hidden_layers = ", m.num_hidden_layers(),
            " must be ≥ 1");
  p.require(m.first_k_dense_replace() >= 0 && m.first_k_dense_replace() <= m.num_hidden_layers(),
            "model.first_k_dense_replace = ", m.first_k_dense_replace(),
            " must be in [0, model.num_hidden_layers = ", m.num_hidden_layers(), "]");
  p.require(m.moe_layer_freq() >= 1, "model.moe_layer_freq = ", m.moe_layer_freq(),
            " must be ≥ 1 (1: every layer after the dense ones is MoE)");
  p.require(m.num_attention_heads() >= 1, "model.num_attention_heads = ", m.num_attention_heads(),
            " must be ≥ 1");

  // MLA.
  p.require(m.q_lora_rank() >= 0, "model.q_lora_rank = ", m.q_lora_rank(),
            " must be ≥ 0 (0: a plain q_proj without the low-rank query)");
  p.require(m.kv_lora_rank() > 0, "model.kv_lora_rank = ", m.kv_lora_rank(),
            " must be > 0 (MLA compresses keys and values through this latent)");
  p.require(m.qk_nope_head_dim() >= 1, "model.qk_nope_head_dim = ", m.qk_nope_head_dim(),
            " must be ≥ 1");
  p.require(m.qk_rope_head_dim() >= 2 && m.qk_rope_head_dim() % 2 == 0,
            "model.qk_rope_head_dim = ", m.qk_rope_head_dim(),
            " must be even and ≥ 2 (RoPE rotates pairs of elements)");
  p.require(m.v_head_dim() >= 1, "model.v_head_dim = ", m.v_head_dim(), " must be ≥ 1");

  // Router: n_group contiguous groups of experts, topk_group groups kept, top-k inside them.
  p.require(m.n_routed_experts() >= 1, "model.n_routed_experts = ", m.n_routed_experts(),
            " must be ≥ 1");
  p.require(m.n_shared_experts() >= 0, "model.n_shared_experts = ", m.n_shared_experts(),
            " must be ≥ 0");
  p.require(m.num_experts_per_tok() >= 1 && m.num_experts_per_tok() <= m.n_routed_experts(),
            "model.num_experts_per_tok = ", m.num_experts_per_tok(),
            " must be in [1, model.n_routed_experts = ", m.n_routed_experts(), "]");
  p.require(m.n_group() >= 1, "model.n_group = ", m.n_group(), " must be ≥ 1");
  p.require(m.topk_group() >= 1 && m.topk_group() <= m.n_group(),
            "model.topk_group = ", m.topk_group(), " must be in [1, model.n_group = ", m.n_group(),
            "]");
  if (m.n_group() >= 1 && m.n_routed_experts() >= 1) {
    const bool grouped = m.n_routed_experts() % m.n_group() == 0;
    p.require(grouped, "model.n_routed_experts = ", m.n_routed_experts(),
              " must be divisible by model.n_group = ", m.n_group());
    const int64_t per_group = m.n_routed_experts() / m.n_group();
    if (grouped && m.topk_group() >= 1 && m.topk_group() <= m.n_group()) {
      p.require(m.num_experts_per_tok() <= m.topk_group() * per_group,
                "model.num_experts_per_tok = ", m.num_experts_per_tok(),
                " must be ≤ model.topk_group × experts per group = ", m.topk_group(), " × ",
                per_group, " = ", m.topk_group() * per_group,
                " (experts per group = model.n_routed_experts / model.n_group)");
    }
    if (grouped && m.topk_method() == "noaux_tc") {
      p.require(per_group >= 2,
                "model.topk_method = \"noaux_tc\" scores a group by its top-2 "
                "experts and needs at least 2 experts per group; model.n_routed_experts / "
                "model.n_group = ",
                m.n_routed_experts(), " / ", m.n_group(), " = ", per_group);
    }
  }
  p.require(m.routed_scaling_factor() > 0,
            "model.routed_scaling_factor = ", m.routed_scaling_factor(), " must be > 0");
  p.require_one_of("model.scoring_func", m.scoring_func(), {"sigmoid", "softmax"});
  p.require_one_of("model.topk_method", m.topk_method(),
                   {"noaux_tc", "greedy", "group_limited_greedy"});
  p.require_one_of("model.model_type", m.model_type(), {"deepseek_v3", "deepseek_v2"});
  p.require(m.device_balance_weight() >= 0,
            "model.device_balance_weight = ", m.device_balance_weight(), " must be ≥ 0 (0: off)");
  p.require(m.comm_balance_weight() >= 0, "model.comm_balance_weight = ", m.comm_balance_weight(),
            " must be ≥ 0 (0: off)");
  if (m.device_balance_weight() > 0 || m.comm_balance_weight() > 0) {
    p.require(m.n_group() >= 2,
              "model.device_balance_weight and model.comm_balance_weight balance the load over "
              "the model.n_group expert groups (V2's devices) and need model.n_group ≥ 2, got ",
              m.n_group());
  }

  // Norms and positions.
  p.require(m.rms_norm_eps() > 0, "model.rms_norm_eps = ", m.rms_norm_eps(), " must be > 0");
  p.require(m.rope_theta() > 0, "model.rope_theta = ", m.rope_theta(), " must be > 0");
  p.require(m.max_position_embeddings() >= 1,
            "model.max_position_embeddings = ", m.max_position_embeddings(), " must be ≥ 1");
  const RopeScaling& rope = m.rope_scaling();
  p.require_one_of("model.rope_scaling.type", rope.type(), {"", "yarn"});
  if (rope.type() == "yarn") {
    p.require(rope.factor() >= 1, "model.rope_scaling.factor = ", rope.factor(),
              " must be ≥ 1 for YaRN (1 = no extension)");
    p.require(rope.original_max_position_embeddings() >= 1,
              "model.rope_scaling.original_max_position_embeddings = ",
              rope.original_max_position_embeddings(), " must be ≥ 1");
    p.require(rope.beta_slow() > 0 && rope.beta_fast() > rope.beta_slow(),
              "model.rope_scaling.beta_fast = ", rope.beta_fast(),
              " and model.rope_scaling.beta_slow = ", rope.beta_slow(),
              " must satisfy beta_fast > beta_slow > 0");
    p.require(rope.mscale() >= 0, "model.rope_scaling.mscale = ", rope.mscale(), " must be ≥ 0");
    p.require(rope.mscale_all_dim() >= 0,
              "model.rope_scaling.mscale_all_dim = ", rope.mscale_all_dim(),
              " must be ≥ 0 (0: no attention-scale correction)");
  }

  p.require(m.num_nextn_predict_layers() >= 0,
            "model.num_nextn_predict_layers = ", m.num_nextn_predict_layers(),
            " must be ≥ 0 (0: no multi-token prediction)");
  p.require(m.initializer_range() > 0, "model.initializer_range = ", m.initializer_range(),
            " must be > 0");
  p.require_one_of("model.torch_dtype", m.torch_dtype(), {"float32", "bfloat16"});
}

}  // namespace trident::config::detail
