#pragma once
// Targets and loss scaling. Every cross-entropy is divided by the number of counted targets in
// the *global* batch (not the micro-batch), and the balance loss by the global number of rows,
// so the gradients of micro-batches and data-parallel ranks sum to the full-batch gradient.
#include <cstdint>
#include <vector>

#include "models/batch.h"
#include "runtime/core/tensor.h"

namespace trident::models {

// Counted targets of a (micro-)batch; sum them over micro-batches and ranks for the global batch.
struct TargetCounts {
  int64_t lm = 0;            // LM targets t_{i+1} with mask 1
  std::vector<int64_t> mtp;  // per MTP depth d: targets t_{i+d+1} inside the row with mask 1
  int64_t sequences = 0;     // rows

  void add(const TargetCounts& other);
};
TargetCounts count_targets(const TokenBatch& batch, int64_t mtp_depth);

struct LossScales {
  int64_t lm_targets = 0;            // global counted LM targets
  std::vector<int64_t> mtp_targets;  // global counted targets per MTP depth
  int64_t sequences = 0;             // global rows (the balance loss is averaged over rows)
  double mtp_weight = 0.0;           // λ
  double balance_alpha = 0.0;        // α (0: no sequence-wise balance loss)
};
LossScales make_loss_scales(const TargetCounts& global, double mtp_weight, double balance_alpha);

// Per-micro-batch losses. The *_loss fields are this micro-batch's contributions to the global
// batch's losses (they add up over micro-batches and ranks); the raw sums and local counts are
// for metrics and scoring.
struct LossResult {
  double loss = 0.0;          // lm_loss + λ · mtp_loss + α · balance_loss
  double lm_loss = 0.0;       // Σ CE / global LM targets
  double mtp_loss = 0.0;      // (1/D) Σ_d Σ CE_d / global targets_d
  double balance_loss = 0.0;  // Σ over MoE layers (main and MTP) Σ rows L_bal / global rows
  double lm_ce_sum = 0.0;
  int64_t lm_tokens = 0;
  std::vector<double> mtp_ce_sum;
  std::vector<int64_t> mtp_tokens;
};

// These are built on the host from the batch and copied to `device`, where the ops read them.
// Model inputs t_{b, s} for s < S as I32 [B · S].
Tensor input_ids(const TokenBatch& batch, Device device = Device::CPU);
// Input of MTP depth d: t_{b, s+d}, or 0 where s + d > S (such positions have no target).
Tensor shifted_ids(const TokenBatch& batch, int64_t shift, Device device = Device::CPU);
// Target of position s for prediction distance `distance` (1: LM, d + 1: MTP depth d):
// t_{b, s+distance} when inside the row and counted, else ops::kIgnoreIndex.
Tensor shifted_targets(const TokenBatch& batch, int64_t distance, Device device = Device::CPU);

}  // namespace trident::models
