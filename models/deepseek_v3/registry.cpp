#include "models/deepseek_v3/registry.h"

#include <string>
#include <utility>

#include "runtime/core/error.h"

namespace trident::models {

const char* param_kind_name(ParamKind kind) {
  switch (kind) {
    case ParamKind::kEmbedding:
      return "embedding";
    case ParamKind::kHead:
      return "head";
    case ParamKind::kNorm:
      return "norm";
    case ParamKind::kAttention:
      return "attention";
    case ParamKind::kDenseFfn:
      return "dense_ffn";
    case ParamKind::kRouter:
      return "router";
    case ParamKind::kRouterBias:
      return "router_bias";
    case ParamKind::kExpert:
      return "expert";
    case ParamKind::kSharedExpert:
      return "shared_expert";
    case ParamKind::kMtpNorm:
      return "mtp_norm";
    case ParamKind::kMtpProjection:
      return "mtp_projection";
  }
  return "?";
}

const char* tp_split_name(TpSplit split) {
  switch (split) {
    case TpSplit::kReplicated:
      return "replicated";
    case TpSplit::kColumn:
      return "column";
    case TpSplit::kRow:
      return "row";
    case TpSplit::kVocab:
      return "vocab";
  }
  return "?";
}

bool is_moe_layer(const config::ModelConfig& config, int64_t layer) {
  const int64_t freq = config.moe_layer_freq() > 0 ? config.moe_layer_freq() : 1;
  return config.n_routed_experts() > 0 && layer >= config.first_k_dense_replace() &&
         layer % freq == 0;
}

void check_model_config(const config::ModelConfig& c) {
  auto positive = [](int64_t value, const char* field) {
    TRIDENT_USER_CHECK(value > 0, "model.", field, " must be positive (got ", value, ")");
  };
  positive(c.vocab_size(), "vocab_size");
  positive(c.hidden_size(), "hidden_size");
  positive(c.num_hidden_layers(), "num_hidden_layers");
  positive(c.num_attention_heads(), "num_attention_heads");
  positive(c.kv_lora_rank(), "kv_lora_rank");
  positive(c.qk_nope_head_dim(), "qk_nope_head_dim");
  positive(c.qk_rope_head_dim(), "qk_rope_head_dim");
  positive(c.v_head_dim(), "v_head_dim");
  TRIDENT_USER_CHECK(c.qk_rope_head_dim() % 2 == 0, "model.qk_rope_head_dim must be even (got ",
                     c.qk_rope_head_dim(), ")");
  TRIDENT_USER_CHECK(c.q_lora_rank() >= 0, "model.q_lora_rank must be ≥ 0 (0 = plain q_proj)");
  TRIDENT_USER_CHECK(c.first_k_dense_replace() >= 0, "model.first_k_dense_replace must be ≥ 0");
  TRIDENT_USER_CHECK(c.num_nextn_predict_layers() >= 0,
                     "model.num_nextn_predict_layers must be ≥ 0");
  const bool any_dense = c.first_k_dense_replace() > 0 || c.n_routed_experts() == 0;
  if (any_dense) positive(c.intermediate_size(), "intermediate_size");
  if (c.n_routed_experts() > 0) {
    positive(c.moe_intermediate_size(), "moe_intermediate_size");
    positive(c.num_experts_per_tok(), "num_experts_per_tok");
    TRIDENT_USER_CHECK(c.num_experts_per_tok() <= c.n_routed_experts(),
                       "model.num_experts_per_tok (", c.num_experts_per_tok(),
                       ") must not exceed model.n_routed_experts (", c.n_routed_experts(), ")");
    const int64_t groups = c.n_group() > 0 ? c.n_group() : 1;
    TRIDENT_USER_CHECK(c.n_routed_experts() % groups == 0, "model.n_group (", groups,
                       ") must divide model.n_routed_experts (", c.n_routed_experts(), ")");
    const int64_t topk_group = c.topk_group() > 0 ? c.topk_group() : groups;
    TRIDENT_USER_CHECK(topk_group <= groups, "model.topk_group (", topk_group,
                       ") must not exceed model.n_group (", groups, ")");
    TRIDENT_USER_CHECK(topk_group * (c.n_routed_experts() / groups) >= c.num_experts_per_tok(),
                       "model.topk_group groups of experts must hold num_experts_per_tok experts");
    TRIDENT_USER_CHECK(c.n_shared_experts() >= 0, "model.n_shared_experts must be ≥ 0");
  }
}

ParameterRegistry::ParameterRegistry(const config::ModelConfig& config) : config_(config) {
  check_model_config(config_);
  const int64_t V = config_.vocab_size();
  const int64_t H = config_.hidden_size();

  ParamSpec embed;
  embed.name = "model.embed_tokens.weight";
  embed.shape = {V, H};
  embed.kind = ParamKind::kEmbedding;
  embed.placement.tp = TpSplit::kVocab;
  add(embed);

  for (int64_t layer = 0; layer < config_.num_hidden_layers(); ++layer) {
    add_decoder_layer(layer, 0);
  }

  ParamSpec norm;
  norm.name = "model.norm.weight";
  norm.shape = {H};
  norm.kind = ParamKind::kNorm;
  add(norm);

  ParamSpec head;
  head.name = "lm_head.weight";
  head.shape = {V, H};
  head.kind = ParamKind::kHead;
  head.placement.tp = TpSplit::kVocab;
  add(head);

  for (int64_t depth = 1; depth <= config_.num_nextn_predict_layers(); ++depth) {
    const int64_t layer = config_.num_hidden_layers() + depth - 1;
    const std::string prefix = "model.layers." + std::to_string(layer) + ".";
    auto mtp = [&](const std::string& name, Shape shape, ParamKind kind) {
      ParamSpec spec;
      spec.name = prefix + name;
      spec.shape = std::move(shape);
      spec.kind = kind;
      spec.layer = layer;
      spec.mtp_depth = depth;
      add(spec);
    };
    mtp("enorm.weight", {H}, ParamKind::kMtpNorm);
    mtp("hnorm.weight", {H}, ParamKind::kMtpNorm);
    // Replicated: its output feeds a decoder layer whose input every TP rank holds whole.
    mtp("eh_proj.weight", {H, 2 * H}, ParamKind::kMtpProjection);
    add_decoder_layer(layer, depth);
    mtp("shared_head.norm.weight", {H}, ParamKind::kMtpNorm);
  }
}

void ParameterRegistry::add_decoder_layer(int64_t layer, int64_t mtp_depth) {
  const config::ModelConfig& c = config_;
  const int64_t H = c.hidden_size();
  const int64_t nh = c.num_attention_heads();
  const int64_t dq = c.qk_nope_head_dim() + c.qk_rope_head_dim();
  const std::string prefix = "model.layers." + std::to_string(layer) + ".";

  auto param = [&](const std::string& name, Shape shape, ParamKind kind, TpSplit tp) {
    ParamSpec spec;
    spec.name = prefix + name;
    spec.shape = std::move(shape);
    spec.kind = kind;
    spec.layer = layer;
    spec.mtp_depth = mtp_depth;
    spec.placement.tp = tp;
    return spec;
  };
  constexpr auto kRep = TpSplit::kReplicated;
  constexpr auto kCol = TpSplit::kColumn;
  constexpr auto kRow = TpSplit::kRow;
  constexpr auto kAttn = ParamKind::kAttention;

  add(param("input_layernorm.weight", {H}, ParamKind::kNorm, kRep));
  // MLA: the low-rank down-projections and their norms are small and replicated; the
  // up-projections are split by heads (column), o_proj by its head-ordered input (row).
  if (c.q_lora_rank() > 0) {
    add(param("self_attn.q_a_proj.weight", {c.q_lora_rank(), H}, kAttn, kRep));
    add(param("self_attn.q_a_layernorm.weight", {c.q_lora_rank()}, kAttn, kRep));
    add(param("self_attn.q_b_proj.weight", {nh * dq, c.q_lora_rank()}, kAttn, kCol));
  } else {
    add(param("self_attn.q_proj.weight", {nh * dq, H}, kAttn, kCol));
  }
  add(param("self_attn.kv_a_proj_with_mqa.weight", {c.kv_lora_rank() + c.qk_rope_head_dim(), H},
            kAttn, kRep));
  add(param("self_attn.kv_a_layernorm.weight", {c.kv_lora_rank()}, kAttn, kRep));
  add(param("self_attn.kv_b_proj.weight",
            {nh * (c.qk_nope_head_dim() + c.v_head_dim()), c.kv_lora_rank()}, kAttn, kCol));
  add(param("self_attn.o_proj.weight", {H, nh * c.v_head_dim()}, kAttn, kRow));
  add(param("post_attention_layernorm.weight", {H}, ParamKind::kNorm, kRep));

  if (!is_moe_layer(c, layer)) {
    const int64_t F = c.intermediate_size();
    add(param("mlp.gate_proj.weight", {F, H}, ParamKind::kDenseFfn, kCol));
    add(param("mlp.up_proj.weight", {F, H}, ParamKind::kDenseFfn, kCol));
    add(param("mlp.down_proj.weight", {H, F}, ParamKind::kDenseFfn, kRow));
    return;
  }
  const int64_t E = c.n_routed_experts();
  const int64_t Fe = c.moe_intermediate_size();
  add(param("mlp.gate.weight", {E, H}, ParamKind::kRouter, kRep));
  // The bias buffer belongs to DeepSeek-V3's aux-loss-free routing (noaux_tc) only.
  if (c.topk_method() == "noaux_tc") {
    ParamSpec bias = param("mlp.gate.e_score_correction_bias", {E}, ParamKind::kRouterBias, kRep);
    bias.trained = false;
    add(bias);
  }
  for (int64_t e = 0; e < E; ++e) {
    const std::string expert = "mlp.experts." + std::to_string(e) + ".";
    for (const char* proj : {"gate_proj", "up_proj", "down_proj"}) {
      const bool down = std::string(proj) == "down_proj";
      ParamSpec spec = param(expert + proj + ".weight", down ? Shape{H, Fe} : Shape{Fe, H},
                             ParamKind::kExpert, down ? kRow : kCol);
      spec.expert = e;
      spec.placement.expert_parallel = true;
      spec.placement.expert_index = e;
      spec.placement.num_experts = E;
      add(spec);
    }
  }
  if (c.n_shared_experts() > 0) {
    const int64_t Fs = Fe * c.n_shared_experts();
    add(param("mlp.shared_experts.gate_proj.weight", {Fs, H}, ParamKind::kSharedExpert, kCol));
    add(param("mlp.shared_experts.up_proj.weight", {Fs, H}, ParamKind::kSharedExpert, kCol));
    add(param("mlp.shared_experts.down_proj.weight", {H, Fs}, ParamKind::kSharedExpert, kRow));
  }
}

void ParameterRegistry::add(ParamSpec spec) {
  spec.weight_decay = spec.trained && spec.shape.size() >= 2;
  TRIDENT_CHECK(index_.count(spec.name) == 0, "duplicate parameter ", spec.name);
  index_.emplace(spec.name, static_cast<int64_t>(specs_.size()));
  specs_.push_back(std::move(spec));
}

int64_t ParameterRegistry::index_of(const std::string& name) const {
  const auto it = index_.find(name);
  TRIDENT_CHECK(it != index_.end(), "no parameter named ", name);
  return it->second;
}

const ParamSpec& ParameterRegistry::spec(const std::string& name) const {
  return specs_[static_cast<size_t>(index_of(name))];
}

namespace {
// A routed expert is activated for a token in k of E cases; every expert has the same shape,
// so counting the experts with index < k counts exactly k experts' parameters.
bool counts_as_activated(const ParamSpec& spec, int64_t top_k) {
  return spec.kind != ParamKind::kExpert || spec.expert < top_k;
}
}  // namespace

ParameterCounts ParameterRegistry::counts() const {
  ParameterCounts counts;
  const int64_t k = config_.num_experts_per_tok();
  for (const ParamSpec& spec : specs_) {
    const int64_t n = spec.numel();
    const bool active = counts_as_activated(spec, k);
    if (spec.mtp_depth == 0) {
      counts.total += n;
      if (active) counts.activated += n;
    } else {
      counts.mtp += n;
      if (active) counts.mtp_activated += n;
    }
    if (spec.kind == ParamKind::kEmbedding) counts.embedding += n;
    if (spec.kind == ParamKind::kHead) counts.head += n;
    if (spec.trained) counts.trained += n;
  }
  return counts;
}

int64_t ParameterRegistry::layer_parameters(int64_t layer, bool activated) const {
  int64_t total = 0;
  for (const ParamSpec& spec : specs_) {
    if (spec.layer != layer || spec.kind == ParamKind::kMtpNorm ||
        spec.kind == ParamKind::kMtpProjection) {
      continue;
    }
    if (activated && !counts_as_activated(spec, config_.num_experts_per_tok())) continue;
    total += spec.numel();
  }
  return total;
}

int64_t ParameterRegistry::attention_parameters(int64_t layer) const {
  int64_t total = 0;
  for (const ParamSpec& spec : specs_) {
    if (spec.layer == layer && spec.kind == ParamKind::kAttention) total += spec.numel();
  }
  return total;
}

ShardSlice tp_slice(const ParamSpec& spec, int64_t tp_rank, int64_t tp_size) {
  TRIDENT_CHECK(tp_size >= 1 && tp_rank >= 0 && tp_rank < tp_size, "bad TP rank ", tp_rank, " of ",
                tp_size);
  ShardSlice slice;
  switch (spec.placement.tp) {
    case TpSplit::kReplicated:
      return slice;
    case TpSplit::kColumn:
    case TpSplit::kVocab:
      slice.dim = 0;
      break;
    case TpSplit::kRow:
      slice.dim = 1;
      break;
  }
  TRIDENT_CHECK(slice.dim < static_cast<int64_t>(spec.shape.size()), spec.name,
                " has no dimension ", slice.dim, " to split");
  const int64_t full = spec.shape[static_cast<size_t>(slice.dim)];
  TRIDENT_USER_CHECK(full % tp_size == 0, "tensor parallel size ", tp_size,
                     " does not divide dimension ", slice.dim, " (", full, ") of ", spec.name, " (",
                     tp_split_name(spec.placement.tp),
                     "-parallel); choose parallel.tp (or etp) dividing it");
  slice.extent = full / tp_size;
  slice.begin = tp_rank * slice.extent;
  return slice;
}

Shape local_shape(const ParamSpec& spec, int64_t tp_rank, int64_t tp_size) {
  const ShardSlice slice = tp_slice(spec, tp_rank, tp_size);
  Shape shape = spec.shape;
  if (slice.dim >= 0) shape[static_cast<size_t>(slice.dim)] = slice.extent;
  return shape;
}

int64_t ep_owner(const ParamSpec& spec, int64_t ep_size) {
  if (!spec.placement.expert_parallel) return 0;
  TRIDENT_USER_CHECK(ep_size >= 1 && spec.placement.num_experts % ep_size == 0, "parallel.ep (",
                     ep_size, ") must divide model.n_routed_experts (", spec.placement.num_experts,
                     ")");
  return spec.placement.expert_index / (spec.placement.num_experts / ep_size);
}

bool held_by_ep_rank(const ParamSpec& spec, int64_t ep_rank, int64_t ep_size) {
  return !spec.placement.expert_parallel || ep_owner(spec, ep_size) == ep_rank;
}

int64_t global_index(const ParamSpec& spec, const ShardSlice& slice, int64_t local_index) {
  if (slice.dim < 0) return local_index;
  // Row-major: split the local index into (outer, split coordinate, inner) and re-offset.
  int64_t inner = 1;
  for (size_t d = static_cast<size_t>(slice.dim) + 1; d < spec.shape.size(); ++d) {
    inner *= spec.shape[d];
  }
  const int64_t full = spec.shape[static_cast<size_t>(slice.dim)];
  const int64_t inner_index = local_index % inner;
  const int64_t coord = (local_index / inner) % slice.extent;
  const int64_t outer = local_index / (inner * slice.extent);
  return (outer * full + slice.begin + coord) * inner + inner_index;
}

}  // namespace trident::models
