#include "parallel/pp/simulate.h"

#include <algorithm>
#include <deque>
#include <limits>
#include <map>

#include "runtime/core/error.h"

namespace trident::parallel::pp {

double StageCosts::overlapped_block() const {
  return forward_backward > 0 ? forward_backward : forward + full_backward();
}

namespace {

double standalone_cost(const StageCosts& costs, ActionKind kind) {
  switch (kind) {
    case ActionKind::Forward:
      return costs.forward;
    case ActionKind::BackwardInput:
      return costs.backward_input;
    case ActionKind::BackwardWeight:
      return costs.backward_weight;
    default:
      return 0;
  }
}

struct RankState {
  size_t pc = 0;
  double clock = 0;
  int live_activations = 0;
};

// A result with one (empty) report per rank, for a schedule with one action list per rank.
SimulationResult empty_result(const Schedule& schedule) {
  TRIDENT_CHECK(static_cast<int>(schedule.ranks.size()) == schedule.layout.ranks);
  SimulationResult result;
  result.ranks.resize(schedule.layout.ranks);
  return result;
}

// Messages in flight: arrival times per channel, oldest first.
using Arrivals = std::map<Channel, std::deque<double>>;

// Runs list[st.pc] when it is a send or a receive: a send posts its arrival after the hop and
// costs no time; a receive waits for its channel's oldest message, once one has arrived by
// `arrived_by`. Returns false (nothing done) for a compute action or a receive whose message
// is not there yet.
bool run_p2p(int rank, const Action& a, const StageCosts& costs, double arrived_by, RankState& st,
             Arrivals& arrivals, std::vector<TimelineEntry>& timeline) {
  if (is_recv(a.kind)) {
    std::deque<double>& queue = arrivals[channel_of(rank, a)];
    if (queue.empty() || queue.front() > arrived_by) return false;
    const double posted = st.clock;
    st.clock = std::max(st.clock, queue.front());
    queue.pop_front();
    timeline.push_back({rank, a, posted, st.clock, false});
  } else if (is_send(a.kind)) {
    arrivals[channel_of(rank, a)].push_back(st.clock + costs.p2p_latency);
    timeline.push_back({rank, a, st.clock, st.clock, false});
  } else {
    return false;
  }
  ++st.pc;
  return true;
}

// The standalone cost of the compute block that starts at list[pc]: one action, or an
// overlapped F with its B and W.
struct ComputeBlock {
  size_t count = 1;
  double standalone = 0;  // sum of the parts' standalone costs
  double cost = 0;        // what the block costs on a core of its own
};

ComputeBlock compute_block(const std::vector<Action>& list, size_t pc, const StageCosts& costs,
                           int rank) {
  const Action& a = list[pc];
  ComputeBlock block;
  block.count = a.overlapped ? 3 : 1;
  TRIDENT_CHECK(pc + block.count <= list.size(), "overlapped block cut short at rank ", rank);
  for (size_t j = 0; j < block.count; ++j)
    block.standalone += standalone_cost(costs, list[pc + j].kind);
  block.cost = a.overlapped ? costs.overlapped_block() : block.standalone;
  return block;
}

// Emits the timeline boxes of a block that ran over [start, end] (split in proportion to the
// parts' standalone costs) and tracks live activations.
void emit_block(const std::vector<Action>& list, size_t pc, const ComputeBlock& block,
                const StageCosts& costs, int rank, double start, double end, RankState& st,
                RankReport& report, std::vector<TimelineEntry>& timeline) {
  const double wall = end - start;
  const bool overlapped = list[pc].overlapped;
  double t = start;
  for (size_t j = 0; j < block.count; ++j) {
    const Action& part = list[pc + j];
    const double share = block.standalone > 0
                             ? wall * standalone_cost(costs, part.kind) / block.standalone
                             : wall / static_cast<double>(block.count);
    timeline.push_back({rank, part, t, j + 1 == block.count ? end : t + share, overlapped});
    t += share;
    if (part.kind == ActionKind::Forward) ++st.live_activations;
    report.peak_activations = std::max(report.peak_activations, st.live_activations);
    if (part.kind == ActionKind::BackwardWeight) --st.live_activations;
  }
  report.busy += wall;
}

// Step time, bubbles and the timeline's order, once every rank has run its list.
void finish(const Schedule& schedule, const std::vector<RankState>& state,
            SimulationResult& result) {
  const int ranks = schedule.layout.ranks;
  for (int r = 0; r < ranks; ++r) {
    TRIDENT_CHECK(state[r].pc == schedule.ranks[r].size(), "simulate: rank ", r,
                  " is stuck at action #", state[r].pc,
                  "; the schedule deadlocks (check_schedule names the cause)");
    result.step_time = std::max(result.step_time, state[r].clock);
  }
  double total_bubble = 0;
  for (RankReport& report : result.ranks) {
    report.bubble = result.step_time - report.busy;
    total_bubble += report.bubble;
  }
  result.bubble_fraction = result.step_time > 0 ? total_bubble / (result.step_time * ranks) : 0.0;
  // Per rank in list order: stable-sort by rank keeps each rank's own order.
  std::stable_sort(result.timeline.begin(), result.timeline.end(),
                   [](const TimelineEntry& x, const TimelineEntry& y) { return x.rank < y.rank; });
}

// Processor sharing over `cores`: an event loop over the moments a block ends or a message
// arrives. Between two events the set of running blocks is fixed, so each progresses at
// min(1, cores / running) standalone seconds per second.
SimulationResult simulate_shared_cores(const Schedule& schedule, const StageCosts& costs,
                                       int cores) {
  const int ranks = schedule.layout.ranks;
  SimulationResult result = empty_result(schedule);
  std::vector<RankState> state(ranks);
  Arrivals arrivals;
  struct Running {
    bool active = false;
    ComputeBlock block;
    double start = 0;
    double remaining = 0;  // standalone seconds of work left
  };
  std::vector<Running> running(ranks);
  double now = 0;

  // Issues rank r's sends and the receives whose message is in by `now`, and starts its next
  // compute block; returns whether it moved.
  auto advance = [&](int r) {
    const std::vector<Action>& list = schedule.ranks[r];
    RankState& st = state[r];
    bool moved = false;
    while (!running[r].active && st.pc < list.size()) {
      const Action& a = list[st.pc];
      if (is_recv(a.kind) || is_send(a.kind)) {
        if (!run_p2p(r, a, costs, now, st, arrivals, result.timeline)) break;
      } else {
        Running& job = running[r];
        job.active = true;
        job.block = compute_block(list, st.pc, costs, r);
        job.start = st.clock;
        job.remaining = job.block.cost;
      }
      moved = true;
    }
    return moved;
  };

  constexpr double kNever = std::numeric_limits<double>::infinity();
  while (true) {
    for (bool moved = true; moved;) {
      moved = false;
      for (int r = 0; r < ranks; ++r) moved = advance(r) || moved;
    }
    int active = 0;
    for (const Running& job : running) active += job.active ? 1 : 0;
    const double rate = active > cores ? static_cast<double>(cores) / active : 1.0;
    double next = kNever;
    for (const Running& job : running) {
      if (job.active) next = std::min(next, now + job.remaining / rate);
    }
    for (int r = 0; r < ranks; ++r) {
      const std::vector<Action>& list = schedule.ranks[r];
      if (running[r].active || state[r].pc >= list.size() || !is_recv(list[state[r].pc].kind))
        continue;
      const std::deque<double>& queue = arrivals[channel_of(r, list[state[r].pc])];
      if (!queue.empty()) next = std::min(next, queue.front());
    }
    if (next == kNever) break;  // done, or deadlocked (finish() says which)
    // Blocks due at `next` (within rounding) end there; the others progress.
    const double slack = 1e-12 * std::max(1.0, std::abs(next));
    for (int r = 0; r < ranks; ++r) {
      Running& job = running[r];
      if (!job.active) continue;
      if (now + job.remaining / rate <= next + slack) {
        RankState& st = state[r];
        emit_block(schedule.ranks[r], st.pc, job.block, costs, r, job.start, next, st,
                   result.ranks[r], result.timeline);
        st.clock = next;
        st.pc += job.block.count;
        job.active = false;
      } else {
        job.remaining -= (next - now) * rate;
      }
    }
    now = next;
  }
  finish(schedule, state, result);
  return result;
}

}  // namespace

SimulationResult simulate(const Schedule& schedule, const StageCosts& costs,
                          const MachineModel& machine) {
  TRIDENT_CHECK(machine.cores >= 0, "simulate: cores must be 0 (one per rank) or positive");
  if (machine.cores > 0) return simulate_shared_cores(schedule, costs, machine.cores);
  const int ranks = schedule.layout.ranks;
  SimulationResult result = empty_result(schedule);
  std::vector<RankState> state(ranks);
  Arrivals arrivals;

  // Advances rank r as far as its received messages allow; returns whether it moved.
  auto advance = [&](int r) {
    const std::vector<Action>& list = schedule.ranks[r];
    RankState& st = state[r];
    RankReport& report = result.ranks[r];
    bool moved = false;
    while (st.pc < list.size()) {
      const Action& a = list[st.pc];
      if (is_recv(a.kind) || is_send(a.kind)) {
        // Without a machine model a message is usable whenever it arrives.
        if (!run_p2p(r, a, costs, std::numeric_limits<double>::infinity(), st, arrivals,
                     result.timeline)) {
          break;
        }
      } else {
        // A compute action, or an overlapped F with its B and W (shape checked beforehand).
        const ComputeBlock block = compute_block(list, st.pc, costs, r);
        emit_block(list, st.pc, block, costs, r, st.clock, st.clock + block.cost, st, report,
                   result.timeline);
        st.clock += block.cost;
        st.pc += block.count;
      }
      moved = true;
    }
    return moved;
  };

  bool moved = true;
  while (moved) {
    moved = false;
    for (int r = 0; r < ranks; ++r) moved = advance(r) || moved;
  }
  finish(schedule, state, result);
  return result;
}

}  // namespace trident::parallel::pp
