// The non-finite policy (runtime/train/nonfinite.h) on one rank and, under mpirun with 2 ranks,
// on a pipeline-parallel and a data-parallel layout: a NaN planted in one weight on the job's
// last rank makes the loss NaN; `stop` ends the step with one error on every rank naming the
// step and that weight on that rank, before any update; `skip` leaves every weight as it was,
// counts the step and stops once more than train.max_skipped_steps were skipped; an infinite
// learning rate, which makes finite gradients produce non-finite weights, always stops. The
// search for the first non-finite tensor names gradients when every weight is finite.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include "runtime/config/config.h"
#include "runtime/core/error.h"
#include "runtime/train/nonfinite.h"
#include "tests/support/layout.h"
#include "tests/support/layout_runs.h"
#include "tests/support/mpi_helpers.h"

namespace trident::testing {
namespace {

// Held only by the last pipeline stage (and by every rank without pipelining).
const char* const kPlanted = "model.norm.weight";

// The layout the job's ranks run: one rank, or 2 ranks as pp2 or dp2.
Layout layout_for_world(bool pipelined) {
  Layout layout;
  if (world_size() == 2) {
    layout.pp = pipelined ? 2 : 1;
    layout.dp = pipelined ? 1 : 2;
  }
  return layout;
}

TrainerRun trainer_on(const Layout& layout, const std::vector<std::string>& overrides) {
  config::TridentConfig config = layout_test_config(layout.global_batch());
  layout.apply(config);
  config::apply_overrides(config, overrides);
  return make_trainer_run(config);
}

// Plants a NaN in the first element of kPlanted on the job's last rank.
void plant_nan(TrainerRun& run) {
  models::ParameterStore& store = run.trainer->model().params();
  if (world_rank() == world_size() - 1) {
    store.value(kPlanted).data<float>()[0] = std::numeric_limits<float>::quiet_NaN();
  }
}

// The message of the UserError one step throws ("" when it does not throw).
std::string step_error(TrainerRun& run) {
  try {
    run.run(1);
  } catch (const UserError& e) {
    return e.detail();
  }
  return "";
}

std::vector<float> flat_copy(const Tensor& t) {
  std::vector<float> out(static_cast<size_t>(t.numel()));
  std::memcpy(out.data(), t.data<float>(), t.nbytes());
  return out;
}

// " on rank N" for the job's last rank (a function: MPI is not started at static init).
std::string on_last_rank() { return " on rank " + std::to_string(world_size() - 1); }

class NonFinite : public ::testing::TestWithParam<bool> {};  // param: pipelined

TEST_P(NonFinite, StopNamesTheStepTheFirstNonFiniteWeightAndItsRank) {
  TrainerRun run = trainer_on(layout_for_world(GetParam()), {"train.nonfinite=stop"});
  run.run(1);
  plant_nan(run);
  const std::vector<float> before = flat_copy(run.trainer->model().params().flat_values());
  const std::string error = step_error(run);
  EXPECT_NE(error.find("step 2: the loss is NaN"), std::string::npos) << error;
  EXPECT_NE(error.find("first non-finite tensor: weight " + std::string(kPlanted) + on_last_rank()),
            std::string::npos)
      << error;
  EXPECT_NE(error.find("train.nonfinite = skip"), std::string::npos) << error;
  // Stopped before the update: every weight as it was (the planted NaN included).
  const std::vector<float> after = flat_copy(run.trainer->model().params().flat_values());
  EXPECT_EQ(std::memcmp(before.data(), after.data(), before.size() * sizeof(float)), 0);
}

TEST_P(NonFinite, SkipKeepsTheWeightsCountsAndStopsPastTheLimit) {
  TrainerRun run = trainer_on(layout_for_world(GetParam()),
                              {"train.nonfinite=skip", "train.max_skipped_steps=2"});
  run.run(1);
  EXPECT_FALSE(run.steps.back().skipped);
  models::ParameterStore& store = run.trainer->model().params();
  const bool holds_planted = world_rank() == world_size() - 1;
  const float original = holds_planted ? store.value(kPlanted).data<float>()[0] : 0.0f;
  plant_nan(run);
  const std::vector<float> before = flat_copy(store.flat_values());
  for (int64_t skipped = 1; skipped <= 2; ++skipped) {
    run.run(1);
    EXPECT_TRUE(run.steps.back().skipped);
    EXPECT_EQ(run.steps.back().skipped_steps, skipped);
    EXPECT_TRUE(std::isnan(run.steps.back().loss));
    const std::vector<float> after = flat_copy(store.flat_values());
    EXPECT_EQ(std::memcmp(before.data(), after.data(), before.size() * sizeof(float)), 0)
        << "a skipped step changed the weights";
  }
  const std::string error = step_error(run);
  EXPECT_NE(error.find("step 4: the loss is NaN"), std::string::npos) << error;
  EXPECT_NE(error.find("3 skipped steps, more than train.max_skipped_steps = 2"), std::string::npos)
      << error;
  EXPECT_NE(error.find("weight " + std::string(kPlanted) + on_last_rank()), std::string::npos)
      << error;

  // With the weight repaired the run trains again (the count stays).
  TrainerRun repaired = trainer_on(layout_for_world(GetParam()),
                                   {"train.nonfinite=skip", "train.max_skipped_steps=2"});
  plant_nan(repaired);
  repaired.run(1);
  EXPECT_TRUE(repaired.steps.back().skipped);
  if (holds_planted) {
    repaired.trainer->model().params().value(kPlanted).data<float>()[0] = original;
  }
  repaired.run(1);
  EXPECT_FALSE(repaired.steps.back().skipped);
  EXPECT_EQ(repaired.steps.back().skipped_steps, 1);
  EXPECT_TRUE(std::isfinite(repaired.steps.back().loss));
}

TEST_P(NonFinite, AnUpdateThatMakesWeightsNonFiniteStopsEvenWhenSkipping) {
  TrainerRun run = trainer_on(layout_for_world(GetParam()),
                              {"train.nonfinite=skip", "train.lr=inf", "train.min_lr=0"});
  const std::string error = step_error(run);
  EXPECT_NE(error.find("step 1: the update made weights non-finite"), std::string::npos) << error;
  EXPECT_NE(error.find("first non-finite tensor: weight model."), std::string::npos) << error;
  EXPECT_NE(error.find("train.lr, now inf"), std::string::npos) << error;
}

INSTANTIATE_TEST_SUITE_P(Layouts, NonFinite, ::testing::Values(false, true),
                         [](const ::testing::TestParamInfo<bool>& param_info) {
                           return param_info.param ? std::string("Pipelined")
                                                   : std::string("Plain");
                         });

TEST(LocateNonFinite, NamesAGradientWhenEveryWeightIsFinite) {
  TrainerRun run = trainer_on(Layout{}, {});  // one rank, whatever the job's size
  models::ParameterStore& store = run.trainer->model().params();
  const parallel::ParallelContext& one = parallel::ParallelContext::one_rank();
  EXPECT_EQ(train::locate_nonfinite(store, one), "every weight and gradient is finite");
  const char* const later = "model.layers.1.self_attn.o_proj.weight";
  const char* const earlier = "model.layers.0.self_attn.o_proj.weight";
  store.grad(later).data<float>()[3] = std::numeric_limits<float>::infinity();
  EXPECT_EQ(train::locate_nonfinite(store, one),
            "gradient of " + std::string(later) + " on rank 0");
  store.grad(earlier).data<float>()[0] = std::numeric_limits<float>::quiet_NaN();
  EXPECT_EQ(train::locate_nonfinite(store, one),
            "gradient of " + std::string(earlier) + " on rank 0");
  // A non-finite weight comes first, wherever it is.
  store.value("lm_head.weight").data<float>()[0] = std::numeric_limits<float>::infinity();
  EXPECT_EQ(train::locate_nonfinite(store, one), "weight lm_head.weight on rank 0");
}

}  // namespace
}  // namespace trident::testing
