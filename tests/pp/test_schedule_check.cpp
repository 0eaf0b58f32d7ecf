// Every generator's schedules pass the checker for many sizes; corrupted schedules fail it
// with a message naming the fault.
#include <gtest/gtest.h>

#include <algorithm>
#include <set>
#include <string>
#include <vector>

#include "parallel/pp/check.h"
#include "parallel/pp/schedule.h"
#include "runtime/core/error.h"

namespace trident::parallel::pp {
namespace {

struct Case {
  std::string name;
  int pp;
  int microbatches;
  int virtual_stages;
};

std::vector<Case> all_cases() {
  std::vector<Case> cases;
  for (const std::string& name : schedule_names()) {
    for (int pp : {2, 4, 8}) {
      const int minimum = min_microbatches(name, pp);
      // Small and large, multiples of pp and not.
      std::set<int> counts = {minimum,    minimum + 1, pp,     pp + 1,     2 * pp - 1, 2 * pp,
                              2 * pp + 1, 3 * pp + 2,  4 * pp, 5 * pp + 3, 37};
      for (int m : counts) {
        if (m < minimum) continue;
        if (name == "interleaved") {
          for (int v : {2, 3, 4}) cases.push_back({name, pp, m, v});
        } else {
          cases.push_back({name, pp, m, 1});
        }
      }
    }
  }
  return cases;
}

Schedule make(const Case& c) {
  return make_schedule({c.name, c.pp, c.microbatches, c.virtual_stages});
}

// The action of `kind` for micro-batch `m` in a rank's list (list.end() if there is none).
std::vector<Action>::iterator find_action(std::vector<Action>& list, ActionKind kind, int m) {
  return std::find_if(list.begin(), list.end(),
                      [&](const Action& a) { return a.kind == kind && a.microbatch == m; });
}

// The checker refuses `s` with a message that says `fragment`.
void expect_rejected(const Schedule& s, const std::string& fragment) {
  const CheckResult result = check_schedule(s);
  EXPECT_FALSE(result.ok);
  EXPECT_NE(result.message.find(fragment), std::string::npos) << result.message;
}

// The checker refuses `s` once rank `rank` loses its action of `kind` for micro-batch `m`.
void expect_rejected_without(Schedule s, int rank, ActionKind kind, int m,
                             const std::string& fragment) {
  auto& list = s.ranks[static_cast<size_t>(rank)];
  const auto it = find_action(list, kind, m);
  ASSERT_NE(it, list.end());
  list.erase(it);
  expect_rejected(s, fragment);
}

TEST(ScheduleCheck, EveryGeneratorPassesForManySizes) {
  int checked = 0;
  for (const Case& c : all_cases()) {
    const Schedule s = make(c);
    const CheckResult result = check_schedule(s);
    EXPECT_TRUE(result.ok) << c.name << " pp=" << c.pp << " m=" << c.microbatches
                           << " v=" << c.virtual_stages << ": " << result.message;
    ++checked;
  }
  EXPECT_GT(checked, 100);
}

TEST(ScheduleCheck, ComputeCountsAndLayout) {
  const Schedule s = make_dualpipev(4, 9);
  ASSERT_EQ(s.layout.num_stages(), 8);
  // The V: rank 0 holds the first and the last stage.
  EXPECT_EQ(s.layout.rank_of(0), 0);
  EXPECT_EQ(s.layout.rank_of(7), 0);
  EXPECT_EQ(s.layout.rank_of(3), 3);
  EXPECT_EQ(s.layout.rank_of(4), 3);
  const StageLayout inter = StageLayout::interleaved(4, 3);
  EXPECT_EQ(inter.rank_of(9), 1);
  EXPECT_EQ(inter.chunk_of(9), 2);
  EXPECT_EQ(inter.stage_of(1, 2), 9);
  for (int r = 0; r < 4; ++r) {
    const auto forwards = std::count_if(s.ranks[r].begin(), s.ranks[r].end(), [](const Action& a) {
      return a.kind == ActionKind::Forward;
    });
    EXPECT_EQ(forwards, 2 * 9) << "rank " << r;
  }
  // DualPipeV overlaps F&B pairs in its steady phase.
  const auto pairs = std::count_if(s.ranks[0].begin(), s.ranks[0].end(),
                                   [](const Action& a) { return a.overlapped; });
  EXPECT_GT(pairs, 0);
}

TEST(ScheduleCheck, DroppedReceiveIsRejected) {
  expect_rejected_without(make_1f1b(4, 8), 2, ActionKind::RecvActivation, 3,
                          "micro-batch 3 stage 2 (rank 2) has 0 RecvActivation");
}

TEST(ScheduleCheck, MissingWeightGradientIsRejected) {
  expect_rejected_without(make_zb_h1(4, 6), 1, ActionKind::BackwardWeight, 4,
                          "micro-batch 4 stage 1 (rank 1) has 0 W actions, expected 1 (missing)");
}

// On the last rank, pull the forwards (with their receives) of micro-batches 1 and 2 ahead of
// B(0). Its own order
// stays causal, but rank pp-2 sends micro-batch 2's activation only after it has received
// B(0)'s gradient: each rank waits for the other.
TEST(ScheduleCheck, SwappedOrderDeadlockIsRejected) {
  for (int pp : {2, 4, 8}) {
    Schedule s = make_1f1b(pp, 2 * pp);
    auto& list = s.ranks[pp - 1];
    auto index_of = [&](ActionKind kind, int m) {
      return static_cast<size_t>(find_action(list, kind, m) - list.begin());
    };
    std::vector<Action> moved;
    for (int m : {1, 2}) {
      for (ActionKind kind : {ActionKind::RecvActivation, ActionKind::Forward}) {
        const size_t i = index_of(kind, m);
        ASSERT_LT(i, list.size());
        moved.push_back(list[i]);
        list.erase(list.begin() + static_cast<long>(i));
      }
    }
    const size_t b0 = index_of(ActionKind::BackwardInput, 0);
    list.insert(list.begin() + static_cast<long>(b0), moved.begin(), moved.end());
    const CheckResult result = check_schedule(s);
    EXPECT_FALSE(result.ok);
    EXPECT_EQ(result.message.rfind("deadlock: blocked at", 0), 0u) << result.message;
    EXPECT_NE(result.message.find("rank " + std::to_string(pp - 1)), std::string::npos);
  }
}

TEST(ScheduleCheck, BackwardBeforeItsGradientIsRejected) {
  Schedule s = make_1f1b(2, 4);
  auto& list = s.ranks[0];  // ... RecvGrad(0) B(0) W(0) ...: move the receive after the W
  const auto recv = find_action(list, ActionKind::RecvGrad, 0);
  ASSERT_NE(recv, list.end());
  ASSERT_EQ((recv + 1)->kind, ActionKind::BackwardInput);
  std::rotate(recv, recv + 1, recv + 3);
  expect_rejected(s, "B(m=0,s=0,fused) runs before a RecvGrad");
}

TEST(ScheduleCheck, ReorderedSendsAreRejected) {
  Schedule s = make_1f1b(2, 4);
  auto& list = s.ranks[0];  // F0 SendActivation0 F1 SendActivation1 ...
  ASSERT_EQ(list[1].kind, ActionKind::SendActivation);
  ASSERT_EQ(list[3].kind, ActionKind::SendActivation);
  // F0 F1 SendActivation1 SendActivation0: each send still follows its F, but rank 1
  // receives micro-batch 0 first.
  const Action send0 = list[1];
  list.erase(list.begin() + 1);
  list.insert(list.begin() + 3, send0);
  expect_rejected(s,
                  "rank 0 -> rank 1 activations: send #0 is SendActivation(m=1,s=0,peer=1) but "
                  "receive #0 is RecvActivation(m=0,s=1,peer=0)");
}

TEST(ScheduleCheck, WrongPeerIsRejected) {
  Schedule s = make_interleaved(4, 2, 8);
  for (Action& a : s.ranks[1]) {
    if (a.kind == ActionKind::SendActivation) {
      a.peer = 3;
      break;
    }
  }
  expect_rejected(s, "peer should be rank 2");
}

TEST(ScheduleCheck, UserErrorsNameTheFlag) {
  auto message_of = [](const ScheduleRequest& request) {
    try {
      make_schedule(request);
    } catch (const UserError& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  EXPECT_NE(message_of({"dualpipev", 4, 7, 1}).find("needs at least 8 micro-batches, got 7"),
            std::string::npos);
  EXPECT_NE(message_of({"interleaved", 4, 8, 1}).find("--virtual"), std::string::npos);
  EXPECT_NE(message_of({"zb-h1", 4, 8, 2}).find("--virtual"), std::string::npos);
  EXPECT_NE(message_of({"gpipe", 4, 8, 1}).find("unknown schedule 'gpipe'"), std::string::npos);
  EXPECT_NE(message_of({"1f1b", 0, 8, 1}).find("--pp"), std::string::npos);
  EXPECT_NE(message_of({"1f1b", 4, 0, 1}).find("--microbatches"), std::string::npos);
}

}  // namespace
}  // namespace trident::parallel::pp
