#include "parallel/pp/check.h"

#include <map>
#include <sstream>
#include <tuple>
#include <vector>

#include "runtime/core/error.h"

namespace trident::parallel::pp {

namespace {

std::string where(int rank, size_t index, const Action& action) {
  return detail::concat("rank ", rank, " action #", index, " ", to_string(action));
}

CheckResult fail(const std::string& message) { return CheckResult{false, message}; }

// Which rank the data of an action comes from or goes to, or -1 when it stays on the rank.
struct Neighbours {
  const StageLayout& layout;
  int rank_of_previous(int stage) const { return stage > 0 ? layout.rank_of(stage - 1) : -1; }
  int rank_of_next(int stage) const {
    return stage + 1 < layout.num_stages() ? layout.rank_of(stage + 1) : -1;
  }
  // The rank a send/recv must name as its peer, or -1 if the action cannot exist there.
  int expected_peer(const Action& a) const {
    switch (a.kind) {
      case ActionKind::SendActivation:
        return rank_of_next(a.stage);
      case ActionKind::RecvActivation:
        return rank_of_previous(a.stage);
      case ActionKind::SendGrad:
        return rank_of_previous(a.stage);
      case ActionKind::RecvGrad:
        return rank_of_next(a.stage);
      default:
        return -1;
    }
  }
};

CheckResult check_shape(const Schedule& s) {
  const StageLayout& layout = s.layout;
  if (static_cast<int>(s.ranks.size()) != layout.ranks) {
    return fail(detail::concat("the schedule has ", s.ranks.size(), " rank lists but its layout ",
                               layout.ranks, " ranks"));
  }
  const Neighbours neighbours{layout};
  for (int r = 0; r < layout.ranks; ++r) {
    const std::vector<Action>& list = s.ranks[r];
    for (size_t i = 0; i < list.size(); ++i) {
      const Action& a = list[i];
      if (a.microbatch < 0 || a.microbatch >= s.microbatches) {
        return fail(where(r, i, a) + ": micro-batch out of range [0, " +
                    std::to_string(s.microbatches) + ")");
      }
      if (a.stage < 0 || a.stage >= layout.num_stages()) {
        return fail(where(r, i, a) + ": stage out of range [0, " +
                    std::to_string(layout.num_stages()) + ")");
      }
      if (layout.rank_of(a.stage) != r) {
        return fail(detail::concat(where(r, i, a), ": stage ", a.stage, " is held by rank ",
                                   layout.rank_of(a.stage)));
      }
      if (is_compute(a.kind)) {
        if (a.overlapped) {
          const bool pair_ok =
              a.kind == ActionKind::Forward && i + 1 < list.size() && list[i + 1].fused_weight;
          if (!pair_ok) {
            return fail(where(r, i, a) +
                        ": an overlapped action must be an F followed by a "
                        "full (fused) backward");
          }
        }
        if (a.fused_weight) {
          const bool fused_ok = a.kind == ActionKind::BackwardInput && i + 1 < list.size() &&
                                list[i + 1].kind == ActionKind::BackwardWeight &&
                                list[i + 1].microbatch == a.microbatch &&
                                list[i + 1].stage == a.stage;
          if (!fused_ok) {
            return fail(where(r, i, a) +
                        ": a fused backward must be a B followed at once by "
                        "its own W");
          }
        }
        continue;
      }
      if (a.overlapped || a.fused_weight) {
        return fail(where(r, i, a) + ": only compute actions can be overlapped or fused");
      }
      const int peer = neighbours.expected_peer(a);
      if (peer < 0 || peer == r) {
        return fail(where(r, i, a) + ": no data crosses ranks here (the neighbouring stage is " +
                    (peer < 0 ? std::string("absent") : "on the same rank") + ")");
      }
      if (a.peer != peer) {
        return fail(detail::concat(where(r, i, a), ": peer should be rank ", peer));
      }
    }
  }
  return {};
}

// Index of each action in its rank's list, by (kind, micro-batch, stage).
using Key = std::tuple<int, int, int>;
Key key(ActionKind kind, int microbatch, int stage) {
  return {static_cast<int>(kind), microbatch, stage};
}

struct Positions {
  std::map<Key, size_t> index;  // position in the owning rank's list
  std::map<Key, int> count;
};

Positions index_actions(const Schedule& s) {
  Positions p;
  for (const std::vector<Action>& list : s.ranks) {
    for (size_t i = 0; i < list.size(); ++i) {
      const Key k = key(list[i].kind, list[i].microbatch, list[i].stage);
      ++p.count[k];
      p.index.emplace(k, i);
    }
  }
  return p;
}

CheckResult check_coverage(const Schedule& s, const Positions& p) {
  const StageLayout& layout = s.layout;
  const Neighbours neighbours{layout};
  auto count = [&](ActionKind kind, int m, int stage) {
    const auto it = p.count.find(key(kind, m, stage));
    return it == p.count.end() ? 0 : it->second;
  };
  for (int stage = 0; stage < layout.num_stages(); ++stage) {
    const int r = layout.rank_of(stage);
    const int prev = neighbours.rank_of_previous(stage);
    const int next = neighbours.rank_of_next(stage);
    const bool receives_input = prev >= 0 && prev != r;
    const bool sends_output = next >= 0 && next != r;
    const int backward = s.forward_only ? 0 : 1;
    const struct {
      ActionKind kind;
      int expected;
    } expectations[] = {
        {ActionKind::Forward, 1},
        {ActionKind::BackwardInput, backward},
        {ActionKind::BackwardWeight, backward},
        {ActionKind::RecvActivation, receives_input ? 1 : 0},
        {ActionKind::SendGrad, receives_input ? backward : 0},
        {ActionKind::SendActivation, sends_output ? 1 : 0},
        {ActionKind::RecvGrad, sends_output ? backward : 0},
    };
    for (int m = 0; m < s.microbatches; ++m) {
      for (const auto& e : expectations) {
        const int n = count(e.kind, m, stage);
        if (n != e.expected) {
          return fail(detail::concat("micro-batch ", m, " stage ", stage, " (rank ", r, ") has ", n,
                                     " ", action_kind_name(e.kind), " action", n == 1 ? "" : "s",
                                     ", expected ", e.expected,
                                     n < e.expected ? " (missing)" : " (duplicate)"));
        }
      }
    }
  }
  return {};
}

CheckResult check_local_order(const Schedule& s, const Positions& p) {
  const StageLayout& layout = s.layout;
  const int last_stage = layout.num_stages() - 1;
  auto before = [&](ActionKind kind, int m, int stage, size_t i) {
    const auto it = p.index.find(key(kind, m, stage));
    return it != p.index.end() && it->second < i;
  };
  for (int r = 0; r < layout.ranks; ++r) {
    const std::vector<Action>& list = s.ranks[r];
    for (size_t i = 0; i < list.size(); ++i) {
      const Action& a = list[i];
      const int m = a.microbatch;
      const int st = a.stage;
      std::string missing;
      switch (a.kind) {
        case ActionKind::Forward:
          if (st > 0) {
            const bool local = layout.rank_of(st - 1) == r;
            if (local && !before(ActionKind::Forward, m, st - 1, i)) {
              missing = detail::concat("F(m=", m, ",s=", st - 1, ") on the same rank");
            } else if (!local && !before(ActionKind::RecvActivation, m, st, i)) {
              missing = detail::concat("a RecvActivation of its input from rank ",
                                       layout.rank_of(st - 1));
            }
          }
          break;
        case ActionKind::BackwardInput:
          if (!before(ActionKind::Forward, m, st, i)) {
            missing = detail::concat("F(m=", m, ",s=", st, ")");
          } else if (st < last_stage) {
            const bool local = layout.rank_of(st + 1) == r;
            if (local && !before(ActionKind::BackwardInput, m, st + 1, i)) {
              missing = detail::concat("B(m=", m, ",s=", st + 1, ") on the same rank");
            } else if (!local && !before(ActionKind::RecvGrad, m, st, i)) {
              missing = detail::concat("a RecvGrad of its output gradient from rank ",
                                       layout.rank_of(st + 1));
            }
          }
          break;
        case ActionKind::BackwardWeight:
          if (!before(ActionKind::BackwardInput, m, st, i)) {
            missing = detail::concat("B(m=", m, ",s=", st, ")");
          }
          break;
        case ActionKind::SendActivation:
          if (!before(ActionKind::Forward, m, st, i)) {
            missing = detail::concat("F(m=", m, ",s=", st, ") that produces the activation");
          }
          break;
        case ActionKind::SendGrad:
          if (!before(ActionKind::BackwardInput, m, st, i)) {
            missing = detail::concat("B(m=", m, ",s=", st, ") that produces the gradient");
          }
          break;
        case ActionKind::RecvActivation:
        case ActionKind::RecvGrad:
          break;
      }
      if (!missing.empty()) return fail(where(r, i, a) + " runs before " + missing);
    }
  }
  return {};
}

std::string channel_name(const Channel& c) {
  return detail::concat("rank ", c.from, " -> rank ", c.to,
                        c.gradient ? " gradients" : " activations");
}

CheckResult check_matching(const Schedule& s) {
  std::map<Channel, std::vector<const Action*>> sends;
  std::map<Channel, std::vector<const Action*>> recvs;
  for (int r = 0; r < s.layout.ranks; ++r) {
    for (const Action& a : s.ranks[r]) {
      if (is_send(a.kind)) sends[channel_of(r, a)].push_back(&a);
      if (is_recv(a.kind)) recvs[channel_of(r, a)].push_back(&a);
    }
  }
  for (const auto& [channel, sent] : sends) {
    const std::vector<const Action*>& received = recvs[channel];
    if (sent.size() != received.size()) {
      return fail(detail::concat(channel_name(channel), ": ", sent.size(), " sends but ",
                                 received.size(), " receives"));
    }
    for (size_t k = 0; k < sent.size(); ++k) {
      const int step = channel.gradient ? -1 : 1;
      if (sent[k]->microbatch != received[k]->microbatch ||
          sent[k]->stage + step != received[k]->stage) {
        return fail(detail::concat(channel_name(channel), ": send #", k, " is ",
                                   to_string(*sent[k]), " but receive #", k, " is ",
                                   to_string(*received[k]), " (order differs)"));
      }
    }
  }
  for (const auto& [channel, received] : recvs) {
    if (!received.empty() && sends.find(channel) == sends.end()) {
      return fail(
          detail::concat(channel_name(channel), ": 0 sends but ", received.size(), " receives"));
    }
  }
  return {};
}

// Runs every rank in order; a receive waits until its channel holds a message.
CheckResult check_progress(const Schedule& s) {
  const int ranks = s.layout.ranks;
  std::vector<size_t> pc(ranks, 0);
  std::map<Channel, int> in_flight;
  bool progress = true;
  while (progress) {
    progress = false;
    for (int r = 0; r < ranks; ++r) {
      const std::vector<Action>& list = s.ranks[r];
      while (pc[r] < list.size()) {
        const Action& a = list[pc[r]];
        if (is_recv(a.kind)) {
          int& waiting = in_flight[channel_of(r, a)];
          if (waiting == 0) break;
          --waiting;
        } else if (is_send(a.kind)) {
          ++in_flight[channel_of(r, a)];
        }
        ++pc[r];
        progress = true;
      }
    }
  }
  std::ostringstream blocked;
  for (int r = 0; r < ranks; ++r) {
    if (pc[r] == s.ranks[r].size()) continue;
    blocked << (blocked.tellp() > 0 ? "; " : "") << where(r, pc[r], s.ranks[r][pc[r]]);
  }
  if (blocked.tellp() > 0) return fail("deadlock: blocked at " + blocked.str());
  return {};
}

}  // namespace

CheckResult check_schedule(const Schedule& schedule) {
  if (CheckResult r = check_shape(schedule); !r.ok) return r;
  const Positions positions = index_actions(schedule);
  if (CheckResult r = check_coverage(schedule, positions); !r.ok) return r;
  if (CheckResult r = check_local_order(schedule, positions); !r.ok) return r;
  if (CheckResult r = check_matching(schedule); !r.ok) return r;
  return check_progress(schedule);
}

}  // namespace trident::parallel::pp
