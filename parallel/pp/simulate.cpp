#include "parallel/pp/simulate.h"

#include <algorithm>
#include <deque>
#include <map>

#include "runtime/core/error.h"

namespace trident::pp {

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

struct ChannelKey {
  int from;
  int to;
  bool gradient;
  auto operator<=>(const ChannelKey&) const = default;
};

ChannelKey channel_of(int rank, const Action& a) {
  const bool gradient = a.kind == ActionKind::SendGrad || a.kind == ActionKind::RecvGrad;
  return is_send(a.kind) ? ChannelKey{rank, a.peer, gradient} : ChannelKey{a.peer, rank, gradient};
}

struct RankState {
  size_t pc = 0;
  double clock = 0;
  int live_activations = 0;
};

}  // namespace

SimulationResult simulate(const Schedule& schedule, const StageCosts& costs) {
  const int ranks = schedule.layout.ranks;
  TRIDENT_CHECK(static_cast<int>(schedule.ranks.size()) == ranks);
  SimulationResult result;
  result.ranks.resize(ranks);
  std::vector<RankState> state(ranks);
  std::map<ChannelKey, std::deque<double>> arrivals;

  // Advances rank r as far as its received messages allow; returns whether it moved.
  auto advance = [&](int r) {
    const std::vector<Action>& list = schedule.ranks[r];
    RankState& st = state[r];
    RankReport& report = result.ranks[r];
    bool moved = false;
    while (st.pc < list.size()) {
      const Action& a = list[st.pc];
      if (is_recv(a.kind)) {
        std::deque<double>& queue = arrivals[channel_of(r, a)];
        if (queue.empty()) break;
        const double posted = st.clock;
        st.clock = std::max(st.clock, queue.front());
        queue.pop_front();
        result.timeline.push_back({r, a, posted, st.clock, false});
        ++st.pc;
      } else if (is_send(a.kind)) {
        arrivals[channel_of(r, a)].push_back(st.clock + costs.p2p_latency);
        result.timeline.push_back({r, a, st.clock, st.clock, false});
        ++st.pc;
      } else {
        // A compute action, or an overlapped F with its B and W (shape checked beforehand).
        const size_t count = a.overlapped ? 3 : 1;
        TRIDENT_CHECK(st.pc + count <= list.size(), "overlapped block cut short at rank ", r);
        double standalone = 0;
        for (size_t j = 0; j < count; ++j)
          standalone += standalone_cost(costs, list[st.pc + j].kind);
        const double block = a.overlapped ? costs.overlapped_block() : standalone;
        double t = st.clock;
        for (size_t j = 0; j < count; ++j) {
          const Action& part = list[st.pc + j];
          const double share = standalone > 0
                                   ? block * standalone_cost(costs, part.kind) / standalone
                                   : block / static_cast<double>(count);
          result.timeline.push_back({r, part, t, t + share, a.overlapped});
          t += share;
          if (part.kind == ActionKind::Forward) ++st.live_activations;
          report.peak_activations = std::max(report.peak_activations, st.live_activations);
          if (part.kind == ActionKind::BackwardWeight) --st.live_activations;
        }
        st.clock += block;
        report.busy += block;
        st.pc += count;
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
  return result;
}

}  // namespace trident::pp
