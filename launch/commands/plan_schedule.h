#pragma once
// The pipeline-schedule part of `trident plan`: build a schedule, prove it valid, simulate it
// with a cost model, print the timeline and the bubble/memory report, optionally draw a PNG.
// The model planner (trident plan --config) calls plan_schedule with costs it derives from the
// model and layout.
#include <ostream>
#include <string>

#include "launch/cli.h"
#include "parallel/pp/schedule.h"
#include "parallel/pp/simulate.h"

namespace trident::launch {

struct SchedulePlanRequest {
  parallel::pp::ScheduleRequest schedule;
  parallel::pp::StageCosts costs;
  std::string png;  // empty: no picture
};

// Throws UserError for a bad request; an invalid generated schedule is an internal error.
parallel::pp::SimulationResult plan_schedule(const SchedulePlanRequest& request, std::ostream& out);

// `trident plan --schedule NAME ...`: parses the flags and calls plan_schedule.
int run_schedule_plan(const launch::Args& args);

}  // namespace trident::launch
