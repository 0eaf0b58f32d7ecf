#pragma once
// Model FLOPs utilisation: the model FLOPs a step's tokens needed (forward + backward, the
// planner's count: 6 · activated matmul parameters + causal attention, recomputation not
// counted) over what the job's ranks could do at their peak in the same time.
#include <cstdint>

#include "runtime/config/trident.pb.h"

namespace trident::train {

struct ThroughputModel {
  double model_flops_per_token = 0.0;  // whole model (main + MTP), forward + backward
  double peak_flops_per_rank = 0.0;    // FLOP/s
  int64_t ranks = 1;

  // Fraction of the job's peak reached at `tokens_per_second` (global); 0 when unknown.
  double mfu(double tokens_per_second) const;
  // Model FLOP/s the job reaches at `tokens_per_second`.
  double model_flops_per_second(double tokens_per_second) const;
};

// FLOPs per token of config.model() at train.seq_len, ranks = pp · dp · tp.
ThroughputModel make_throughput_model(const config::TridentConfig& config,
                                      double peak_flops_per_rank);

}  // namespace trident::train
