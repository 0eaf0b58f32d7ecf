#pragma once
// Text and CSV views of a simulated schedule, for `trident plan` and the docs.
#include <string>

#include "parallel/pp/simulate.h"

namespace trident::parallel::pp {

// One row per rank, one cell per `cell_time` of simulated time. A cell shows the action
// letter (F, B, W) and micro-batch id; the letter is upper case for a rank's even chunks and
// lower case for its odd chunks (DualPipeV: upper = descending half, lower = ascending half).
// Idle cells are dots. Times are rounded to whole cells.
std::string render_timeline_text(const Schedule& schedule, const SimulationResult& result,
                                 double cell_time);

// rank,kind,microbatch,stage,chunk,start,end,overlapped: compute actions only.
std::string timeline_csv(const Schedule& schedule, const SimulationResult& result);

}  // namespace trident::parallel::pp
