#pragma once
// FLOPs, communication volumes and time per micro-batch for one pipeline rank.
//
// FLOPs per token (forward + backward) = 6 · N_mm + 6 · Σ_layers nh · (dq + dv) · S / 2, with
// N_mm the matrix parameters a token activates (k routed experts + the shared one, no
// embedding lookup, norms or router bias; lm_head counted once per head: main + each MTP
// depth) and the second term the causal attention scores (q·kᵀ and p·v, half the S×S square).
// Forward is 2 · N_mm + 2 · attn, backward-input 2 · N_mm + 4 · attn, backward-weight 2 · N_mm.
#include <cstdint>

#include "models/deepseek_v3/planner/hardware.h"
#include "models/deepseek_v3/planner/layout.h"
#include "models/deepseek_v3/planner/memory.h"
#include "models/deepseek_v3/registry.h"

namespace trident::models::planner {

struct FlopsPerToken {
  double matmul_params = 0;  // N_mm
  double attention = 0;      // Σ_layers nh · (dq + dv) · S / 2 (one multiply-add = 2 FLOPs)
  double recompute = 0;      // FLOPs the backward spends recomputing dropped activations
  double forward() const { return 2.0 * matmul_params + 2.0 * attention; }
  double backward_input() const { return 2.0 * matmul_params + 4.0 * attention + recompute; }
  double backward_weight() const { return 2.0 * matmul_params; }
  // Model FLOPs (what MFU counts): recomputation excluded.
  double total() const { return 6.0 * matmul_params + 6.0 * attention; }
};

// The whole model (main + MTP) and one pipeline rank's share (global, before the TP split).
FlopsPerToken model_flops_per_token(const models::ParameterRegistry& registry, int64_t seq_len);
// `recompute`: selective adds the MLA up-projections (2 · (q_b + kv_b) per layer), full the
// whole forward of the rank's decoder layers.
FlopsPerToken stage_flops_per_token(const models::ParameterRegistry& registry,
                                    const StageContents& stage, int64_t seq_len,
                                    Recompute recompute = Recompute::kNone);

// Expected nodes a token's k experts reach in an EP group spread over n nodes, experts placed
// uniformly: n · (1 − (1 − 1/n)^k), capped by node-limited routing M.
double expected_nodes_per_token(int64_t k, int64_t nodes, int64_t max_nodes_per_token);

// Bytes one rank sends per micro-batch in one direction (forward; backward mirrors it).
struct MicroBatchComm {
  double a2a_ib = 0;      // dispatch + combine over InfiniBand
  double a2a_nvlink = 0;  // dispatch + combine over NVLink
  double p2p = 0;         // pipeline activations to the next stage
  bool p2p_over_ib = false;
  // Tensor parallelism: two all-reduces of the hidden state per layer (attention and FFN
  // outputs), ring volume 2·(tp − 1)/tp · T · H elements each; not overlapped.
  double tp_allreduce = 0;
  bool tp_over_ib = false;
};
MicroBatchComm microbatch_comm(const config::ModelConfig& model, const Layout& layout,
                               const PlanOptions& options, int64_t act_bytes, int64_t moe_layers,
                               int64_t layers);

// Seconds per micro-batch on one rank.
struct StageTimes {
  double forward = 0, backward_input = 0, backward_weight = 0;  // compute
  double a2a = 0;           // all-to-all of one direction (forward or backward)
  double p2p = 0;           // one direction
  double tp = 0;            // tensor-parallel all-reduces of one direction (always exposed)
  bool overlapped = false;  // a2a hidden behind compute (dualpipev, or a2a_chunks > 1)
  // With communication: F' = (F ⊕ a2a) + tp, B' = ((B + W) ⊕ a2a) + tp, where ⊕ is max when
  // overlapped and + otherwise; p2p is asynchronous (max with the rest).
  double forward_total() const;
  double backward_total() const;  // backward-input + weight
  double microbatch_total() const { return forward_total() + backward_total(); }
};
StageTimes stage_times(const FlopsPerToken& stage_flops, const MicroBatchComm& comm,
                       const Layout& layout, const HardwareSpec& hw);

// Idle time of one pipeline rank per step (docs: 1F1B (PP−1)(F+B), ZB-H1 (PP−1)(F+B−2W),
// DualPipe (PP/2−1)(F&B+B−3W), interleaved 1F1B (PP−1)(F+B)/v), B the full backward.
double pipeline_bubble(const Layout& layout, const StageTimes& t);

}  // namespace trident::models::planner
