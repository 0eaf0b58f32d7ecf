#include "parallel/pp/timeline_text.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <sstream>
#include <vector>

#include "runtime/core/error.h"

namespace trident::parallel::pp {

std::string render_timeline_text(const Schedule& schedule, const SimulationResult& result,
                                 double cell_time) {
  TRIDENT_CHECK(cell_time > 0, "cell_time ", cell_time);
  const int digits =
      static_cast<int>(std::to_string(std::max(0, schedule.microbatches - 1)).size());
  const int width = 1 + digits;
  const long long cells = std::llround(std::ceil(result.step_time / cell_time - 1e-9));
  std::vector<std::vector<std::string>> rows(schedule.layout.ranks,
                                             std::vector<std::string>(cells, "."));
  for (const TimelineEntry& e : result.timeline) {
    if (!is_compute(e.action.kind)) continue;
    const long long first = std::llround(e.start / cell_time);
    const long long last = std::llround(e.end / cell_time);
    char letter = action_kind_name(e.action.kind)[0];
    if (schedule.layout.chunk_of(e.action.stage) % 2 == 1) {
      letter = static_cast<char>(std::tolower(static_cast<unsigned char>(letter)));
    }
    const std::string label = letter + std::to_string(e.action.microbatch);
    for (long long c = first; c < last && c < cells; ++c) rows[e.rank][c] = label;
  }
  std::ostringstream out;
  for (int r = 0; r < schedule.layout.ranks; ++r) {
    out << "rank " << r << (r < 10 && schedule.layout.ranks > 10 ? "  | " : " | ");
    for (const std::string& cell : rows[r]) {
      out << cell << std::string(width - cell.size() + 1, ' ');
    }
    out << "\n";
  }
  return out.str();
}

std::string timeline_csv(const Schedule& schedule, const SimulationResult& result) {
  std::ostringstream out;
  out << "rank,kind,microbatch,stage,chunk,start,end,overlapped\n";
  for (const TimelineEntry& e : result.timeline) {
    if (!is_compute(e.action.kind)) continue;
    out << e.rank << "," << action_kind_name(e.action.kind) << "," << e.action.microbatch << ","
        << e.action.stage << "," << schedule.layout.chunk_of(e.action.stage) << "," << e.start
        << "," << e.end << "," << (e.overlapped ? 1 : 0) << "\n";
  }
  return out.str();
}

}  // namespace trident::parallel::pp
