// The learning-rate schedule, the clip coefficient and the progress line (AdamW itself is an op:
// tests/ops/test_optimizer_values.cpp).
#include <gtest/gtest.h>

#include "runtime/train/lr_schedule.h"
#include "runtime/train/optimizer.h"
#include "runtime/train/progress.h"

namespace trident::train {
namespace {

TEST(LrSchedule, WarmupThenCosine) {
  const LrSchedule schedule{1.0, 0.1, 10, 110};
  EXPECT_DOUBLE_EQ(schedule.at(1), 0.1);
  EXPECT_DOUBLE_EQ(schedule.at(10), 1.0);
  EXPECT_NEAR(schedule.at(60), 0.55, 1e-12);  // half-way through the cosine
  EXPECT_NEAR(schedule.at(110), 0.1, 1e-12);
  EXPECT_NEAR(schedule.at(200), 0.1, 1e-12);  // stays at the floor
}

TEST(Clipping, Coefficient) {
  EXPECT_DOUBLE_EQ(clip_coefficient(0.5, 1.0), 1.0);
  EXPECT_NEAR(clip_coefficient(4.0, 1.0), 0.25, 1e-6);
  EXPECT_DOUBLE_EQ(clip_coefficient(4.0, 0.0), 1.0);
}

TEST(Progress, DurationFormat) {
  EXPECT_EQ(ProgressMeter::format_duration(12.2), "12s");
  EXPECT_EQ(ProgressMeter::format_duration(185), "3m05s");
  EXPECT_EQ(ProgressMeter::format_duration(3720), "1h02m");
}

}  // namespace
}  // namespace trident::train
