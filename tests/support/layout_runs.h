#pragma once
// The one fixture of the layout tests: a trainer on a layout with the context it runs on, the
// one-rank reference run it is compared with (computed once per process and config), and the
// comparisons: every step's metrics, and every weight slice a rank holds against the one-rank
// tensor it is a slice of.
#include <cstdint>
#include <memory>
#include <vector>

#include "models/deepseek_v3/parameters.h"
#include "parallel/context.h"
#include "runtime/config/trident.pb.h"
#include "runtime/train/trainer.h"

namespace trident::testing {

// The tiny model as the layout tests train it: `global_batch` rows of 15 tokens per step in
// micro-batches of 2 (30 tokens: uneven shares over 4 TP ranks), the expert all-to-all in 3
// chunks,
// clipping that bites (max norm 0.5 against norms of about 1.7), the balance
// loss and the router-bias update on, MTP weighted 0.3. AdamW eps is 1e-6: with 1e-8 an element
// whose gradient sits at the fp32 round-off floor takes an O(lr) step of arbitrary sign under
// any change of summation order, which soon flips routing decisions, and the comparison would
// be about that noise rather than the layout.
config::TridentConfig layout_test_config(int64_t global_batch);

// Whether `config` describes one rank (every parallel size 1).
bool one_rank_layout(const config::TridentConfig& config);

// The context of `config`'s layout: the one-rank context, or one over every rank of the job
// (collective over the world).
std::unique_ptr<parallel::ParallelContext> context_for(const config::TridentConfig& config);

// A trainer on a layout and the context it runs on (declared first: it outlives the trainer).
struct TrainerRun {
  std::unique_ptr<parallel::ParallelContext> context;
  std::unique_ptr<train::Trainer> trainer;
  std::vector<train::StepMetrics> steps;
  void run(int64_t count);
};
// `config` on its layout; `bucket_bytes` > 0 overrides parallel.dp_bucket_mb.
TrainerRun make_trainer_run(const config::TridentConfig& config, int64_t bucket_bytes = 0);
// `config` on one rank (its parallel section ignored) after `steps` steps.
const TrainerRun& one_rank_run(const config::TridentConfig& config, int64_t steps);

// Largest relative error (norm-scaled) of this rank's held slices against the tensors of the
// one-rank store `whole`.
double held_weight_error(const models::ParameterStore& held, const models::ParameterStore& whole);
// The same with the parameter it comes from; `trained_only` leaves out the router biases, which
// change by steps of ±γ outside the optimizer.
struct HeldWeightError {
  double error = 0.0;
  std::string name;
};
HeldWeightError worst_held_weight(const models::ParameterStore& held,
                                  const models::ParameterStore& whole, bool trained_only = false);

// The step's loss, its parts and the gradient norm within `tolerance` relative of one rank's,
// the token counts exactly, and the same metrics on every rank (collective over the world).
void expect_step_matches(const train::StepMetrics& got, const train::StepMetrics& want,
                         double tolerance);

}  // namespace trident::testing
