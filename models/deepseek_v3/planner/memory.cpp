#include "models/deepseek_v3/planner/memory.h"

#include <algorithm>
#include <optional>

#include "models/deepseek_v3/registry.h"
#include "runtime/config/dtype_names.h"
#include "runtime/core/enum_names.h"
#include "runtime/core/error.h"

namespace trident::models::planner {

namespace {
constexpr EnumName<Recompute> kRecomputeNames[] = {
    {Recompute::kNone, "none"}, {Recompute::kSelective, "selective"}, {Recompute::kFull, "full"}};
}  // namespace

Recompute parse_recompute(const std::string& name) {
  if (name.empty()) return Recompute::kNone;
  if (const std::optional<Recompute> recompute = parse_enum(kRecomputeNames, name)) {
    return *recompute;
  }
  TRIDENT_USER_FAIL("recompute '", name, "' is not one of ", enum_name_list(kRecomputeNames));
}

const char* recompute_name(Recompute recompute) { return enum_name(kRecomputeNames, recompute); }

int64_t param_bytes(const config::TridentConfig& config) {
  const std::string& dtype = config.train().param_dtype();
  if (dtype.empty()) return 4;  // a config built without defaults: fp32
  return static_cast<int64_t>(dtype_size(config::storage_dtype(dtype, "train.param_dtype")));
}

int64_t activation_bytes(const config::TridentConfig& config) {
  const std::string& dtype = config.train().activation_dtype();
  if (dtype.empty()) return param_bytes(config);
  return static_cast<int64_t>(dtype_size(config::storage_dtype(dtype, "train.activation_dtype")));
}

ActivationSettings activation_settings(const config::TridentConfig& config, const Layout& layout,
                                       const PlanOptions& options) {
  ActivationSettings s;
  s.act_bytes = activation_bytes(config);
  s.tp = layout.tp;
  s.etp = layout.etp;
  s.recompute = options.recompute;
  s.fp8_cache = options.fp8_activation_cache;
  return s;
}

namespace {

constexpr double kF32 = 4.0;  // norm statistics, softmax log-sum-exp, router scores, logits
constexpr double kI32 = 4.0;  // token ids, expert indices

struct Dims {
  double H, nh, dq, dv, dn, rq, rkv, F, Fe, E, k, shared, V;
};
Dims dims_of(const config::ModelConfig& m) {
  return Dims{static_cast<double>(m.hidden_size()),
              static_cast<double>(m.num_attention_heads()),
              static_cast<double>(m.qk_nope_head_dim() + m.qk_rope_head_dim()),
              static_cast<double>(m.v_head_dim()),
              static_cast<double>(m.qk_nope_head_dim()),
              static_cast<double>(m.q_lora_rank()),
              static_cast<double>(m.kv_lora_rank()),
              static_cast<double>(m.intermediate_size()),
              static_cast<double>(m.moe_intermediate_size()),
              static_cast<double>(m.n_routed_experts()),
              static_cast<double>(m.num_experts_per_tok()),
              static_cast<double>(m.n_shared_experts()),
              static_cast<double>(m.vocab_size())};
}

// MLA, per token. Saved by the forward (none): layer input x, its norm output xn, q_a output
// and its norm output (q_lora > 0), q (nh·dq), the raw and normalised kv latent (rkv each),
// the expanded keys k (nh·dq) and values v (nh·dv), the attention output (nh·dv), the
// residual h and its norm output hn; fp32: four RMSNorm rstd values and nh log-sum-exps.
double attention_bytes(const Dims& d, const ActivationSettings& s) {
  const double a = static_cast<double>(s.act_bytes), t = static_cast<double>(s.tp);
  const bool low_rank_q = d.rq > 0;
  const double out_bytes = s.fp8_cache ? 1.0 : a;  // o_proj input
  const double stats = kF32 * ((low_rank_q ? 4.0 : 3.0) + d.nh / t);
  double kept = a * (d.H /*x*/ + d.H /*h*/ + d.rkv /*raw latent*/ + (low_rank_q ? d.rq : 0.0)) +
                out_bytes * d.nh * d.dv / t;
  if (s.recompute == Recompute::kNone) {
    kept += a * (d.H /*xn*/ + d.H /*hn*/ + d.rkv /*latent*/ + (low_rank_q ? d.rq : 0.0) /*cq*/ +
                 d.nh * (d.dq /*q*/ + d.dq /*k*/ + d.dv /*v*/) / t);
  }
  return kept + stats;
}

// SwiGLU (dense FFN or shared expert) of width f per token: gate and up outputs and the
// activation (the down projection's input); selective recomputes the activation.
double swiglu_bytes(double f, const ActivationSettings& s) {
  const double a = static_cast<double>(s.act_bytes), t = static_cast<double>(s.tp);
  return a * f / t * (s.recompute == Recompute::kNone ? 3.0 : 2.0);
}

// MoE, per token: expert indices (i32) and gate weights (fp32) for k experts, fp32 router
// scores for E experts, the k dispatched copies of the input (xp, H each), each expert's gate
// and up outputs and activation (Fe each), the expert outputs (yp, H each; the gate-weight
// gradient reads them), and the shared expert. Selective recomputes the SwiGLU activation and
// applies the gate weight inside it (w · swiglu(g, u) feeds the down projection), so the
// gate-weight gradient comes from the recomputed activation and yp is not kept. The FP8 cache
// stores xp and the SwiGLU inputs in one byte.
double moe_bytes(const Dims& d, const ActivationSettings& s) {
  const double a = static_cast<double>(s.act_bytes), t = static_cast<double>(s.tp);
  const double etp = static_cast<double>(s.etp);
  const double rows = d.k * etp / t;  // dispatched rows per token on one rank
  const double cached = s.fp8_cache ? 1.0 : a;
  const bool keep_all = s.recompute == Recompute::kNone;
  const double expert_rows = rows * d.H * (cached + (keep_all ? a : 0.0));
  const double expert_hidden = d.k * d.Fe / t * (2.0 * cached + (keep_all ? a : 0.0));
  return kI32 * d.k + kF32 * d.k + kF32 * d.E + expert_rows + expert_hidden +
         swiglu_bytes(d.shared * d.Fe, s);
}

}  // namespace

double layer_activation_bytes(const config::ModelConfig& model, bool moe,
                              const ActivationSettings& s) {
  const Dims d = dims_of(model);
  if (s.recompute == Recompute::kFull) return static_cast<double>(s.act_bytes) * d.H;
  return attention_bytes(d, s) + (moe ? moe_bytes(d, s) : swiglu_bytes(d.F, s));
}

double head_activation_bytes(const config::ModelConfig& model, const ActivationSettings& s) {
  const Dims d = dims_of(model);
  const double a = static_cast<double>(s.act_bytes), t = static_cast<double>(s.tp);
  // norm input and output, rstd, fp32 logits (vocab-parallel), log-sum-exp, target id
  return a * 2.0 * d.H + kF32 * (1.0 + d.V / t + 1.0) + kI32;
}

double mtp_input_activation_bytes(const config::ModelConfig& model, const ActivationSettings& s) {
  const Dims d = dims_of(model);
  const double a = static_cast<double>(s.act_bytes);
  // embedded tokens (enorm input), the joined [e ; g] eh_proj input, two rstd, the token ids
  return a * 3.0 * d.H + kF32 * 2.0 + kI32;
}

double backward_transient_bytes(const config::ModelConfig& model, const ActivationSettings& s,
                                bool holds_moe, bool holds_head) {
  const Dims d = dims_of(model);
  const double a = static_cast<double>(s.act_bytes), t = static_cast<double>(s.tp);
  // Attention: output gradient, dq, dk, dv per head and the kv_b output gradient.
  double worst = a * d.nh / t * (d.dv + 2.0 * d.dq + d.dv + d.dn + d.dv) + a * 2.0 * d.H;
  worst = std::max(worst, a * 3.0 * d.F / t + a * 2.0 * d.H);  // SwiGLU input gradients
  if (holds_moe) {
    const double rows = d.k * static_cast<double>(s.etp) / t;
    worst = std::max(worst, a * (2.0 * rows * d.H + 3.0 * d.k * d.Fe / t) + kF32 * d.E);
  }
  if (holds_head) worst = std::max(worst, kF32 * d.V / t + a * 2.0 * d.H);  // logit gradient
  if (s.recompute == Recompute::kFull) {
    ActivationSettings none = s;
    none.recompute = Recompute::kNone;
    worst += layer_activation_bytes(model, holds_moe, none);  // the recomputed layer
  }
  return worst;
}

MemoryBreakdown rank_memory(const config::TridentConfig& config, const Layout& layout,
                            const PlanOptions& options, const StageContents& stage,
                            const RankParameters& params) {
  const config::ModelConfig& model = config.model();
  const ActivationSettings s = activation_settings(config, layout, options);
  const double pbytes = static_cast<double>(param_bytes(config));
  MemoryBreakdown m;
  m.optimizer_shard_dense = layout.zero1 ? static_cast<double>(layout.dp) : 1.0;
  m.optimizer_shard_expert = layout.zero1 ? static_cast<double>(layout.edp) : 1.0;
  const double sharded_trained =
      static_cast<double>(params.dense_trained) / m.optimizer_shard_dense +
      static_cast<double>(params.expert_trained) / m.optimizer_shard_expert;
  m.weights = pbytes * static_cast<double>(params.total());
  // ZeRO-1 as the trainer runs it (parallel/dp/zero1_state.h, grad_reducer.h) keeps an fp32
  // master shard even over fp32 working weights (the all-gather's source) and the
  // reduce-scatter's output: the rank's shard of the gradients.
  m.master = pbytes < 4.0 || layout.zero1 ? 4.0 * sharded_trained : 0.0;
  // Without ZeRO-1 the trainer's moments span the whole store, the embedding copy's unused
  // slots included; ZeRO-1 shards only what this rank updates.
  const double copy = static_cast<double>(params.embedding_copy);
  m.moments = 2.0 * static_cast<double>(options.moment_bytes) *
              (sharded_trained + (layout.zero1 ? 0.0 : copy));
  m.grads = static_cast<double>(options.grad_bytes) *
            (static_cast<double>(params.trained()) + copy + (layout.zero1 ? sharded_trained : 0.0));

  const double tokens = static_cast<double>(layout.tokens_per_microbatch());
  bool holds_moe = false;
  double per_token = 0.0;
  for (const int64_t layer : stage.layers) {
    const bool moe = models::is_moe_layer(model, layer);
    holds_moe = holds_moe || moe;
    per_token += layer_activation_bytes(model, moe, s);
  }
  if (stage.embedding) per_token += kI32;  // token ids for the embedding gradient
  double head_per_token = 0.0;
  if (stage.head) {
    for (int64_t depth = 1; depth <= model.num_nextn_predict_layers(); ++depth) {
      const int64_t layer = model.num_hidden_layers() + depth - 1;
      const bool moe = models::is_moe_layer(model, layer);
      holds_moe = holds_moe || moe;
      per_token += layer_activation_bytes(model, moe, s) + mtp_input_activation_bytes(model, s);
      head_per_token += head_activation_bytes(model, s);
    }
    head_per_token += head_activation_bytes(model, s);
  }
  m.activations_per_microbatch = tokens * (per_token + head_per_token);
  m.inflight = inflight_microbatches(layout, stage.stage);
  // The head's forward is followed at once by its backward on the last chunk, so only one
  // micro-batch's logits are alive.
  m.activations = tokens * (m.inflight * per_token + head_per_token);
  m.transient = tokens * backward_transient_bytes(model, s, holds_moe, stage.head);
  if (holds_moe && layout.ep * layout.etp > 1) {
    const double dispatch = options.dispatch_bytes > 0 ? static_cast<double>(options.dispatch_bytes)
                                                       : static_cast<double>(s.act_bytes);
    const double rows = static_cast<double>(model.num_experts_per_tok() * layout.etp) /
                        static_cast<double>(layout.tp);
    m.a2a_buffers = tokens * rows * static_cast<double>(model.hidden_size()) *
                    (dispatch + static_cast<double>(s.act_bytes));
  }
  return m;
}

}  // namespace trident::models::planner
