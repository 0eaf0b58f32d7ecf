#pragma once
// The sizes and settings of one DeepSeek-V3 model, read once from the ModelConfig so the blocks
// do not each re-derive them (and agree on defaults for fields a config leaves at 0).
#include <cstdint>

#include "ops/cpu/rope.h"
#include "ops/cpu/router.h"
#include "runtime/config/trident.pb.h"

namespace trident::models {

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
  ops::cpu::YarnSettings yarn;
  ops::cpu::RouterSettings router;
};

ModelDims model_dims(const config::ModelConfig& config);

}  // namespace trident::models
