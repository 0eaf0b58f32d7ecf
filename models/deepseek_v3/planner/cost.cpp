#include "models/deepseek_v3/planner/cost.h"

#include <algorithm>
#include <cmath>
#include <string>

namespace trident::models::planner {

using models::ParamKind;
using models::ParamSpec;

namespace {

bool is_matmul_activated(const ParamSpec& spec, int64_t top_k) {
  if (spec.shape.size() < 2 || spec.kind == ParamKind::kEmbedding) return false;
  return spec.kind != ParamKind::kExpert || spec.expert < top_k;
}

double attention_per_layer(const config::ModelConfig& m, int64_t seq_len) {
  return static_cast<double>(m.num_attention_heads()) *
         static_cast<double>(m.qk_nope_head_dim() + m.qk_rope_head_dim() + m.v_head_dim()) *
         static_cast<double>(seq_len) / 2.0;
}

// lm_head runs once for the main model and once per MTP depth.
double head_uses(const config::ModelConfig& m) {
  return 1.0 + static_cast<double>(m.num_nextn_predict_layers());
}

bool is_mla_up_projection(const ParamSpec& spec) {
  const std::string& n = spec.name;
  const auto ends_with = [&n](const std::string& tail) {
    return n.size() >= tail.size() && n.compare(n.size() - tail.size(), tail.size(), tail) == 0;
  };
  return ends_with("self_attn.q_b_proj.weight") || ends_with("self_attn.q_proj.weight") ||
         ends_with("self_attn.kv_b_proj.weight");
}

FlopsPerToken flops_of(const models::ParameterRegistry& registry, int64_t seq_len,
                       const StageContents* stage, Recompute recompute) {
  const config::ModelConfig& m = registry.config();
  FlopsPerToken f;
  double layer_matmuls = 0.0;  // decoder-layer matmul parameters (no head, no eh_proj)
  for (const ParamSpec& spec : registry.specs()) {
    if (stage != nullptr && !stage_holds(*stage, spec)) continue;
    if (spec.kind == ParamKind::kEmbedding) continue;  // the copy for MTP is a lookup too
    if (!is_matmul_activated(spec, m.num_experts_per_tok())) continue;
    const double uses = spec.kind == ParamKind::kHead ? head_uses(m) : 1.0;
    f.matmul_params += uses * static_cast<double>(spec.numel());
    if (spec.layer >= 0 && spec.kind != ParamKind::kMtpProjection) {
      layer_matmuls += static_cast<double>(spec.numel());
    }
    if (recompute == Recompute::kSelective && is_mla_up_projection(spec)) {
      f.recompute += 2.0 * static_cast<double>(spec.numel());
    }
  }
  int64_t layers = 0;
  if (stage == nullptr) {
    layers = m.num_hidden_layers() + m.num_nextn_predict_layers();
  } else {
    layers = static_cast<int64_t>(stage->layers.size()) +
             (stage->head ? m.num_nextn_predict_layers() : 0);
  }
  f.attention = static_cast<double>(layers) * attention_per_layer(m, seq_len);
  if (recompute == Recompute::kFull) f.recompute = 2.0 * layer_matmuls + 2.0 * f.attention;
  return f;
}

}  // namespace

FlopsPerToken model_flops_per_token(const models::ParameterRegistry& registry, int64_t seq_len) {
  return flops_of(registry, seq_len, nullptr, Recompute::kNone);
}

FlopsPerToken stage_flops_per_token(const models::ParameterRegistry& registry,
                                    const StageContents& stage, int64_t seq_len,
                                    Recompute recompute) {
  return flops_of(registry, seq_len, &stage, recompute);
}

double expected_nodes_per_token(int64_t k, int64_t nodes, int64_t max_nodes_per_token) {
  if (nodes <= 1) return 1.0;
  const double n = static_cast<double>(nodes);
  double reached = n * (1.0 - std::pow(1.0 - 1.0 / n, static_cast<double>(k)));
  if (max_nodes_per_token > 0)
    reached = std::min(reached, static_cast<double>(max_nodes_per_token));
  return reached;
}

MicroBatchComm microbatch_comm(const config::ModelConfig& model, const Layout& layout,
                               const PlanOptions& options, int64_t act_bytes, int64_t moe_layers,
                               int64_t layers) {
  MicroBatchComm c;
  const double tokens =
      static_cast<double>(layout.tokens_per_microbatch()) / static_cast<double>(layout.tp);
  const double H = static_cast<double>(model.hidden_size());
  const double a = static_cast<double>(act_bytes);
  const int64_t group = layout.ep * layout.etp;  // consecutive ranks: ETP innermost, then EP
  if (group > 1 && moe_layers > 0) {
    const double dispatch =
        options.dispatch_bytes > 0 ? static_cast<double>(options.dispatch_bytes) : a;
    const int64_t gpn = layout.gpus_per_node;
    const int64_t nodes = (group + gpn - 1) / gpn;
    const double reached =
        expected_nodes_per_token(model.num_experts_per_tok(), nodes, layout.max_nodes_per_token);
    // One copy per remote node crosses InfiniBand (then NVLink fans it out to the experts).
    const double remote = reached * static_cast<double>(nodes - 1) / static_cast<double>(nodes);
    const double copies = static_cast<double>(model.num_experts_per_tok() * layout.etp);
    const double local_peers = static_cast<double>(std::min<int64_t>(group, gpn));
    const double nvlink_copies = copies * (1.0 - 1.0 / local_peers);
    const double moe = static_cast<double>(moe_layers);
    c.a2a_ib = moe * tokens * remote * H * (dispatch + a);
    c.a2a_nvlink = moe * tokens * nvlink_copies * H * (dispatch + a);
  }
  if (layout.tp > 1) {
    const double tp = static_cast<double>(layout.tp);
    c.tp_allreduce = static_cast<double>(layers) * 2.0 * 2.0 * (tp - 1.0) / tp *
                     static_cast<double>(layout.tokens_per_microbatch()) * H * a;
    c.tp_over_ib = layout.tp > layout.gpus_per_node;
  }
  if (layout.pp > 1) {
    // Each chunk boundary the rank owns sends the hidden state on (the TP ranks split it).
    c.p2p = static_cast<double>(layout.chunks_per_rank) * tokens * H * a;
    c.p2p_over_ib = layout.dp * layout.tp >= layout.gpus_per_node;
  }
  return c;
}

double StageTimes::forward_total() const {
  const double comm = overlapped ? std::max(forward, a2a) : forward + a2a;
  return std::max(comm + tp, p2p);
}

double StageTimes::backward_total() const {
  const double compute = backward_input + backward_weight;
  const double comm = overlapped ? std::max(compute, a2a) : compute + a2a;
  return std::max(comm + tp, p2p);
}

StageTimes stage_times(const FlopsPerToken& stage_flops, const MicroBatchComm& comm,
                       const Layout& layout, const HardwareSpec& hw) {
  StageTimes t;
  const double tokens =
      static_cast<double>(layout.tokens_per_microbatch()) / static_cast<double>(layout.tp);
  const double rate = hw.compute_flops_per_s();
  t.forward = tokens * stage_flops.forward() / rate;
  t.backward_input = tokens * stage_flops.backward_input() / rate;
  t.backward_weight = tokens * stage_flops.backward_weight() / rate;
  t.a2a = std::max(comm.a2a_ib / hw.ib_bytes_per_s(), comm.a2a_nvlink / hw.nvlink_bytes_per_s());
  t.p2p = comm.p2p / (comm.p2p_over_ib ? hw.ib_bytes_per_s() : hw.nvlink_bytes_per_s());
  t.tp = comm.tp_allreduce / (comm.tp_over_ib ? hw.ib_bytes_per_s() : hw.nvlink_bytes_per_s());
  t.overlapped = layout.schedule == Schedule::kDualPipeV || layout.a2a_chunks > 1;
  return t;
}

double pipeline_bubble(const Layout& layout, const StageTimes& t) {
  if (layout.pp <= 1) return 0.0;
  const double pp = static_cast<double>(layout.pp);
  const double F = t.forward_total(), B = t.backward_total(), W = t.backward_weight;
  double bubble = 0.0;
  switch (layout.schedule) {
    case Schedule::k1F1B:
      bubble = (pp - 1.0) * (F + B);
      break;
    case Schedule::kInterleaved:
      bubble = (pp - 1.0) * (F + B) / static_cast<double>(layout.chunks_per_rank);
      break;
    case Schedule::kZbH1:
      bubble = (pp - 1.0) * (F + B - 2.0 * W);
      break;
    case Schedule::kDualPipeV: {
      // F&B: a forward and a backward chunk run together, their communication hidden.
      const double fb = std::max(t.forward + t.backward_input + t.backward_weight, 2.0 * t.a2a);
      bubble = (pp / 2.0 - 1.0) * (fb + B - 3.0 * W);
      break;
    }
  }
  return std::max(bubble, 0.0);
}

}  // namespace trident::models::planner
