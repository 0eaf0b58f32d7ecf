#pragma once
// The non-finite policy every trainer applies (docs/training.md, "Non-finite values").
//
// After the gradients of a step (or of one GRPO update) the loss and the global gradient norm
// are checked. Both are sums over the whole job, so every rank reaches the same verdict without
// another collective. When either is NaN or infinite the step is skipped (train.nonfinite =
// skip: no update, the router biases unchanged, counted; more than train.max_skipped_steps
// skipped steps stop the run) or the run stops (train.nonfinite = stop). After every update the
// weights are checked too: an update that makes a weight non-finite (an infinite learning rate,
// an overflow) cannot be skipped after the fact and always stops the run. A stop is a UserError
// thrown on every rank at the same point, before anything is saved, so a non-finite model is
// never checkpointed or exported.
//
// The message names the step, what was not finite and the first non-finite tensor: the first in
// the model's parameter order whose weight (or else gradient) holds a NaN or an infinity, on the
// lowest world rank that holds one.
#include <cstdint>
#include <string>

#include "models/deepseek_v3/parameters.h"
#include "parallel/context.h"
#include "runtime/config/trident.pb.h"

namespace trident::train {

enum class NonFiniteAction { Stop, Skip };

struct NonFiniteSettings {
  NonFiniteAction action = NonFiniteAction::Stop;
  int64_t max_skipped_steps = 10;
  const char* lr_field = "train.lr";  // the learning rate the messages advise lowering
};
// train.nonfinite and train.max_skipped_steps; `lr_field` names the run's learning rate.
NonFiniteSettings nonfinite_settings(const config::TrainConfig& train,
                                     const char* lr_field = "train.lr");

// "weight model.layers.1.mlp.experts.3.up_proj.weight on rank 2", "gradient of … on rank 0", or
// a sentence saying that every weight and gradient is finite. Collective over the world.
std::string locate_nonfinite(const models::ParameterStore& store,
                             const parallel::ParallelContext& context);

class NonFiniteGuard {
 public:
  NonFiniteGuard(const models::ParameterStore& store, const parallel::ParallelContext& context,
                 NonFiniteSettings settings);

  // After the gradients of `step` (`what` names it in messages: "step 12", "GRPO step 3, update
  // 2"): true when the loss and gradient norm are finite and the update may go ahead, false when
  // the step is to be skipped. Throws when the run stops.
  bool admit(const std::string& what, double loss, double grad_norm);
  // After the update of `what`, given how many weights this rank's update made non-finite
  // (Optimizer::update counts them as it writes them): throws, naming the first non-finite
  // weight and the configured learning rate `lr` (the field settings.lr_field), unless the
  // count is 0 on every rank. Collective over the world.
  void check_update(const std::string& what, double lr, int64_t nonfinite_here) const;

  // Steps skipped so far in this run (a resumed run restores the count it had saved).
  int64_t skipped() const { return skipped_; }
  void restore_skipped(int64_t skipped) { skipped_ = skipped; }

 private:
  const models::ParameterStore& store_;
  const parallel::ParallelContext& context_;
  NonFiniteSettings settings_;
  int64_t skipped_ = 0;
};

}  // namespace trident::train
