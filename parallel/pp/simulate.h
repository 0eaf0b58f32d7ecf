#pragma once
// Replays a schedule with a cost per action. Each rank runs its list in order; a compute
// action starts when its rank is free and (through the receive before it) its inputs have
// arrived. Sends cost nothing on the sender and arrive p2p_latency later; a receive ends when
// its message arrives. Costs are per virtual stage (per model chunk), the same for all stages.
#include <vector>

#include "parallel/pp/schedule.h"

namespace trident::parallel::pp {

struct StageCosts {
  double forward = 1;          // F
  double backward_input = 1;   // B (input gradient only)
  double backward_weight = 1;  // W; a full backward is backward_input + backward_weight
  // One overlapped F&B block (a forward chunk and a full backward chunk at once). Zero or
  // less means no overlap gain: the block costs forward + backward_input + backward_weight.
  double forward_backward = 0;
  double p2p_latency = 0;

  double full_backward() const { return backward_input + backward_weight; }
  double overlapped_block() const;
};

struct TimelineEntry {
  int rank = 0;
  Action action;
  double start = 0;
  double end = 0;
  // Part of an F&B block: the block's time is split between its F, B and W in proportion to
  // their standalone costs, so each keeps its own box in the timeline.
  bool overlapped = false;
};

struct RankReport {
  double busy = 0;    // time spent computing (an F&B block counts once, at its block cost)
  double bubble = 0;  // step time - busy
  // Peak activation memory, in micro-batch activations of one virtual stage: +1 at each F,
  // -1 at its W (a full backward emits W right after B, so there the release is at B).
  int peak_activations = 0;
};

struct SimulationResult {
  double step_time = 0;  // the latest end over all ranks
  std::vector<RankReport> ranks;
  double bubble_fraction = 0;           // sum of bubbles / (ranks x step time)
  std::vector<TimelineEntry> timeline;  // every action, per rank in list order
};

// The machine the ranks share. With `cores` = 0 every rank has a processor to itself (the
// published formulas' assumption). With cores > 0 the compute actions running at the same
// moment share that many cores by processor sharing: with n > cores of them running, each
// progresses at cores / n of its standalone speed, so an action's wall time grows with the
// number of others computing beside it. Communication takes no core. cores >= ranks gives the
// same result as cores = 0.
struct MachineModel {
  int cores = 0;
};

// The schedule must pass check_schedule; a deadlock here is an internal error. Under a core
// model a compute action's timeline box and its rank's busy time are its wall time.
SimulationResult simulate(const Schedule& schedule, const StageCosts& costs,
                          const MachineModel& machine = {});

}  // namespace trident::parallel::pp
