#pragma once
// The sizes and settings of one DeepSeek-V3 (or V2) model, read once from the ModelConfig so the
// blocks do not each re-derive them (and agree on defaults for fields a config leaves at 0).
#include <cstdint>

#include "ops/ops.h"
#include "runtime/config/trident.pb.h"

namespace trident::models {

// DeepSeek-V2's device-level and communication balance losses, added to the expert-level
// (sequence-wise) balance loss with these weights (docs/model.md). The devices are the n_group
// contiguous expert groups of the router; a token reaches at most max_devices of them.
struct BalanceSettings {
  double device_weight = 0.0;
  double comm_weight = 0.0;
  int64_t devices = 1;
  int64_t max_devices = 1;
};
BalanceSettings balance_settings(const config::ModelConfig& config);

struct ModelDims {
  int64_t vocab = 0;
  int64_t hidden = 0;      // H
  int64_t layers = 0;      // main-model decoder layers
  int64_t heads = 0;       // nh
  int64_t q_lora = 0;      // rq (0: plain q_proj)
  int64_t kv_lora = 0;     // rkv
  int64_t nope = 0;        // dn
  int64_t rope = 0;        // dr
  int64_t v_dim = 0;       // dv
  int64_t qk_dim = 0;      // dq = dn + dr
  int64_t dense_ffn = 0;   // F
  int64_t expert_ffn = 0;  // Fe
  int64_t experts = 0;     // E
  int64_t shared_experts = 0;
  int64_t top_k = 0;      // k
  int64_t mtp_depth = 0;  // D
  float eps = 1e-6f;
  float softmax_scale = 1.0f;  // dq^-0.5 · m² (docs/model.md)
  ops::YarnSettings yarn;
  ops::RouterSettings router;
  bool has_router_bias = true;  // mlp.gate.e_score_correction_bias exists (topk_method noaux_tc)
  BalanceSettings balance;
};

ModelDims model_dims(const config::ModelConfig& config);

}  // namespace trident::models
