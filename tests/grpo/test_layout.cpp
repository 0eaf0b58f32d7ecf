// The layouts `trident grpo` runs (dp × tp ranks, routed experts optionally split over an ep
// that divides dp × tp, layers over linear pp stages, also with tp and ep) and the clear refusals of the
// others.
#include <gtest/gtest.h>

#include "runtime/core/error.h"
#include "runtime/train/grpo/grpo_run.h"

namespace trident::train::grpo {
namespace {

config::ParallelConfig layout(int64_t dp, int64_t ep, int64_t tp = 1, int64_t etp = 1,
                              int64_t pp = 1) {
  config::ParallelConfig p;
  p.set_dp(dp);
  p.set_ep(ep);
  p.set_tp(tp);
  p.set_etp(etp);
  p.set_pp(pp);
  return p;
}

TEST(GrpoLayout, DataAndExpertParallelAreAccepted) {
  EXPECT_NO_THROW(check_grpo_layout(layout(1, 1)));
  EXPECT_NO_THROW(check_grpo_layout(layout(3, 1)));
  EXPECT_NO_THROW(check_grpo_layout(layout(2, 2)));
  EXPECT_NO_THROW(check_grpo_layout(layout(4, 2)));
  EXPECT_NO_THROW(check_grpo_layout(layout(1, 1, 1, 1, /*pp=*/2)));
  EXPECT_NO_THROW(check_grpo_layout(layout(2, 2, 1, 1, /*pp=*/2)));
}

TEST(GrpoLayout, TensorParallelIsAccepted) {
  EXPECT_NO_THROW(check_grpo_layout(layout(1, 1, /*tp=*/2)));
  EXPECT_NO_THROW(check_grpo_layout(layout(2, 1, /*tp=*/2)));
  EXPECT_NO_THROW(check_grpo_layout(layout(1, 2, /*tp=*/2)));  // the EP group is the TP group
  EXPECT_NO_THROW(check_grpo_layout(layout(2, 4, /*tp=*/2)));
}

TEST(GrpoLayout, PipelineWithTensorParallelIsAccepted) {
  EXPECT_NO_THROW(check_grpo_layout(layout(1, 1, /*tp=*/2, 1, /*pp=*/2)));
  EXPECT_NO_THROW(check_grpo_layout(layout(2, 1, /*tp=*/2, 1, /*pp=*/2)));
  // With ep as well (in each stage the EP group folds over the dp × tp ranks).
  EXPECT_NO_THROW(check_grpo_layout(layout(1, 2, /*tp=*/2, 1, /*pp=*/2)));
  EXPECT_NO_THROW(check_grpo_layout(layout(2, 2, /*tp=*/2, 1, /*pp=*/2)));
}

TEST(GrpoLayout, OtherLayoutsAreRefused) {
  EXPECT_THROW(check_grpo_layout(layout(2, 2, 1, /*etp=*/2)), UserError);
  config::ParallelConfig interleaved = layout(2, 1, 1, 1, /*pp=*/2);
  interleaved.set_virtual_stages(2);
  EXPECT_THROW(check_grpo_layout(interleaved), UserError);
  EXPECT_THROW(check_grpo_layout(layout(1, 4, /*tp=*/2, 1, /*pp=*/2)), UserError);
  EXPECT_THROW(check_grpo_layout(layout(3, 2)), UserError);  // ep must divide dp × tp
  EXPECT_THROW(check_grpo_layout(layout(1, 4, /*tp=*/2)), UserError);
}

}  // namespace
}  // namespace trident::train::grpo
