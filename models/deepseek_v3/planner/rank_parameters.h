#pragma once
// The parameters one rank holds, read from the parameter registry: a pipeline rank's layers
// (embedding on the first stage, final norm + head + MTP on the last), the TP slice of
// attention, dense FFN, shared experts, embedding and head, and 1/ep of the routed experts
// (each split further over etp).
#include <cstdint>

#include "models/deepseek_v3/planner/layout.h"
#include "models/deepseek_v3/registry.h"

namespace trident::models::planner {

struct RankParameters {
  int64_t dense = 0;          // non-expert parameters held (gradients reduced over dp)
  int64_t expert = 0;         // routed-expert parameters held (gradients reduced over edp)
  int64_t dense_trained = 0;  // of `dense`, those that get gradients and optimizer state
  int64_t expert_trained = 0;
  // Of `dense`, the last pipeline stage's copy of the embedding (for MTP): it gets a gradient,
  // which the trainer sends to stage 0's rank, but it is neither reduced over dp nor updated
  // here; stage 0 sends the updated table back (runtime/train/optimizer.h).
  int64_t embedding_copy = 0;
  int64_t total() const { return dense + expert; }
  int64_t trained() const { return dense_trained + expert_trained; }
};

// Whether a registry record belongs to a pipeline rank's pieces.
bool stage_holds(const StageContents& stage, const models::ParamSpec& spec);

RankParameters rank_parameters(const models::ParameterRegistry& registry, const Layout& layout,
                               const StageContents& stage);

}  // namespace trident::models::planner
