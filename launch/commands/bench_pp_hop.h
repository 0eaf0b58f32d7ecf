#pragma once
// The hop between neighbouring pipeline ranks as `trident bench pp` measures it: half a
// ping-pong of one activation over the link, on a quiet machine and on busy cores.

#include "launch/commands/bench_pp_stage.h"
#include "parallel/comm/communicator.h"

namespace trident::bench_pp {

// Pairs (0,1), (2,3), ... at once; median (--best: fastest) over `repeats`, the slowest pair.
double measured_hop_seconds(parallel::comm::Communicator& link, const StageShape& shape,
                            int repeats, bool best);

// The pairs take turns while every other rank runs GEMMs back to back; the median.
double measured_busy_hop_seconds(parallel::comm::Communicator& link, const StageShape& shape,
                                 int repeats);

}  // namespace trident::bench_pp
