#pragma once
// Memory per rank: weights, fp32 master weights and AdamW moments (sharded over dp for dense
// parameters and over edp for experts under ZeRO-1), gradients, the activations a micro-batch
// keeps from forward to backward times the micro-batches in flight, the largest transient of
// one backward step, and the all-to-all buffers. The per-token activation formulas list the
// tensors the model's forward saves (models/deepseek_v3, docs/planner.md).
#include <cstdint>
#include <string>

#include "models/deepseek_v3/planner/layout.h"
#include "models/deepseek_v3/planner/rank_parameters.h"
#include "runtime/config/trident.pb.h"

namespace trident::models::planner {

// none: keep every saved tensor; selective: recompute the RMSNorm outputs, the MLA
// up-projections (q, k, v) and the SwiGLU outputs in backward (DeepSeek-V3's choice);
// full: keep only each layer's input and recompute the layer in backward.
enum class Recompute { kNone, kSelective, kFull };
Recompute parse_recompute(const std::string& name);
const char* recompute_name(Recompute recompute);

struct PlanOptions {
  Recompute recompute = Recompute::kNone;
  int64_t grad_bytes = 4;      // gradient accumulation buffers (fp32)
  int64_t moment_bytes = 4;    // AdamW m and v elements (DeepSeek-V3 kept them in bf16: 2)
  int64_t dispatch_bytes = 0;  // all-to-all dispatch element size; 0 = activation size (FP8: 1)
  bool fp8_activation_cache = false;  // expert and o_proj GEMM inputs cached in FP8 (1 byte)
};

// Element sizes used by the formulas.
struct ActivationSettings {
  int64_t act_bytes = 4;  // saved activations: train.activation_dtype (fp32 or bf16)
  int64_t tp = 1;
  int64_t etp = 1;
  Recompute recompute = Recompute::kNone;
  bool fp8_cache = false;
};
ActivationSettings activation_settings(const config::TridentConfig& config, const Layout& layout,
                                       const PlanOptions& options);
int64_t param_bytes(const config::TridentConfig& config);  // train.param_dtype: 4 or 2
// train.activation_dtype: 4 or 2 (unset: as train.param_dtype).
int64_t activation_bytes(const config::TridentConfig& config);

// Bytes per token a decoder layer keeps for its backward (attention + dense FFN or MoE).
double layer_activation_bytes(const config::ModelConfig& model, bool moe,
                              const ActivationSettings& s);
// Bytes per token of the output head (final norm input and output, fp32 logits, CE state) and
// of one MTP depth outside its decoder layer and head (embedding, norms, eh_proj input).
double head_activation_bytes(const config::ModelConfig& model, const ActivationSettings& s);
double mtp_input_activation_bytes(const config::ModelConfig& model, const ActivationSettings& s);
// The largest extra working set of one backward step (per token), e.g. the head's logit
// gradient or a layer's input-gradient temporaries (plus the recomputed layer under full).
double backward_transient_bytes(const config::ModelConfig& model, const ActivationSettings& s,
                                bool holds_moe, bool holds_head);

struct MemoryBreakdown {
  double weights = 0;  // working weights, param dtype
  double master = 0;   // fp32 master copy (only when the working weights are bf16)
  double moments = 0;  // AdamW m and v
  double grads = 0;
  double activations = 0;                 // saved activations × in-flight micro-batches + head
  double transient = 0;                   // largest backward working set
  double a2a_buffers = 0;                 // dispatch send + combine receive of one MoE layer
  double activations_per_microbatch = 0;  // the rank's layers, one micro-batch
  double inflight = 0;                    // micro-batches in flight (see inflight_microbatches)
  double optimizer_shard_dense = 1;       // ZeRO-1 divisor applied to dense optimizer state
  double optimizer_shard_expert = 1;      // … and to expert optimizer state
  double total() const {
    return weights + master + moments + grads + activations + transient + a2a_buffers;
  }
};

MemoryBreakdown rank_memory(const config::TridentConfig& config, const Layout& layout,
                            const PlanOptions& options, const StageContents& stage,
                            const RankParameters& params);

}  // namespace trident::models::planner
