#pragma once
// Text reports of a plan: the parameter counts (exact), the per-rank table, the step time.
#include <string>

#include "models/deepseek_v3/planner/planner.h"

namespace trident::models::planner {

// 671026419200 -> "671,026,419,200"
std::string with_commas(int64_t value);
std::string format_plan(const Plan& plan);
// One CSV header and row per plan for sweeps.
std::string plan_csv_header();
std::string plan_csv_row(const Plan& plan);

}  // namespace trident::models::planner
