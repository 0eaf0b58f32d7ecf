// The simulator against the published bubble formulas and the activation-memory bounds.
// Bubble formulas per rank (DSV3.md; B there is a full backward = our B + W):
//   1F1B      (PP-1)(F+B)
//   ZB-H1     (PP-1)(F+B-2W)
//   DualPipeV (PP/2-1)(F&B+B-3W) with PP the number of stages = 2 x ranks, so
//             (ranks-1)(F&B+B-3W); it is the bubble of the most idle rank (the last).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>

#include "parallel/pp/check.h"
#include "parallel/pp/schedule.h"
#include "parallel/pp/simulate.h"
#include "parallel/pp/timeline_text.h"

namespace trident::parallel::pp {
namespace {

constexpr double kTolerance = 1e-9;

StageCosts costs(double f, double b, double w, double fb = 0) {
  StageCosts c;
  c.forward = f;
  c.backward_input = b;
  c.backward_weight = w;
  c.forward_backward = fb;
  return c;
}

SimulationResult run(const Schedule& s, const StageCosts& c) {
  const CheckResult check = check_schedule(s);
  EXPECT_TRUE(check.ok) << check.message;
  return simulate(s, c);
}

double max_bubble(const SimulationResult& r) {
  double worst = 0;
  for (const RankReport& rank : r.ranks) worst = std::max(worst, rank.bubble);
  return worst;
}

const int kPipelineSizes[] = {2, 4, 8};

TEST(Simulate, OneFOneBBubbleIsPublishedFormula) {
  for (const StageCosts& c : {costs(1, 1, 1), costs(2, 3, 1), costs(1, 0.5, 2)}) {
    for (int pp : kPipelineSizes) {
      for (int m : {pp, pp + 1, 3 * pp - 1, 4 * pp}) {
        const SimulationResult r = run(make_1f1b(pp, m), c);
        const double formula = (pp - 1) * (c.forward + c.full_backward());
        for (int rank = 0; rank < pp; ++rank) {
          EXPECT_NEAR(r.ranks[rank].bubble, formula, kTolerance)
              << "pp=" << pp << " m=" << m << " rank " << rank;
          EXPECT_NEAR(r.ranks[rank].busy, m * (c.forward + c.full_backward()), kTolerance);
        }
        EXPECT_NEAR(r.step_time, (m + pp - 1) * (c.forward + c.full_backward()), kTolerance);
        EXPECT_NEAR(r.bubble_fraction, formula / r.step_time, kTolerance);
      }
    }
  }
}

TEST(Simulate, ZeroBubbleH1BubbleIsPublishedFormula) {
  // The handcrafted ZB-H1 assumes F = B = W (ZB paper); unit costs and a scaled copy.
  for (const StageCosts& c : {costs(1, 1, 1), costs(2.5, 2.5, 2.5)}) {
    for (int pp : kPipelineSizes) {
      for (int m : {pp, pp + 1, 2 * pp + 3, 4 * pp}) {
        const SimulationResult r = run(make_zb_h1(pp, m), c);
        const double formula = (pp - 1) * (c.forward + c.full_backward() - 2 * c.backward_weight);
        for (int rank = 0; rank < pp; ++rank) {
          EXPECT_NEAR(r.ranks[rank].bubble, formula, kTolerance)
              << "pp=" << pp << " m=" << m << " rank " << rank;
        }
      }
    }
  }
}

TEST(Simulate, DualPipeVBubbleIsPublishedFormula) {
  // F&B below F+B+W (an overlap gain), equal to it (no gain), and unequal F, B, W.
  for (const StageCosts& c : {costs(1, 1, 1, 2.5), costs(1, 1, 1, 3), costs(2, 2, 1, 4.5)}) {
    for (int pp : kPipelineSizes) {
      for (int m : {2 * pp, 2 * pp + 1, 3 * pp + 1, 6 * pp}) {
        const SimulationResult r = run(make_dualpipev(pp, m), c);
        const double formula =
            (pp - 1) * (c.overlapped_block() + c.full_backward() - 3 * c.backward_weight);
        EXPECT_NEAR(max_bubble(r), formula, kTolerance) << "pp=" << pp << " m=" << m;
        EXPECT_NEAR(r.ranks[pp - 1].bubble, formula, kTolerance) << "pp=" << pp << " m=" << m;
        // Lower ranks run more overlapped pairs and so idle less, by the overlap gain each.
        const double gain = c.forward + c.full_backward() - c.overlapped_block();
        for (int rank = 0; rank + 1 < pp; ++rank) {
          EXPECT_NEAR(r.ranks[rank].bubble, formula - gain * (pp - 2 - rank), kTolerance)
              << "pp=" << pp << " m=" << m << " rank " << rank;
        }
      }
    }
  }
}

TEST(Simulate, InterleavedBubbleShrinksWithChunks) {
  // Megatron's interleaved bubble: (PP-1)(F+B) in per-chunk costs, i.e. 1/v of 1F1B's for
  // the same model, when pp divides the micro-batch count.
  const StageCosts c = costs(1, 1, 1);
  for (int pp : kPipelineSizes) {
    for (int v : {2, 3}) {
      for (int m : {pp, 2 * pp, 4 * pp}) {
        const SimulationResult r = run(make_interleaved(pp, v, m), c);
        for (int rank = 0; rank < pp; ++rank) {
          EXPECT_NEAR(r.ranks[rank].bubble, (pp - 1) * (c.forward + c.full_backward()), kTolerance)
              << "pp=" << pp << " v=" << v << " m=" << m << " rank " << rank;
        }
      }
    }
  }
}

TEST(Simulate, PeakActivationMemory) {
  const StageCosts c = costs(1, 1, 1, 2.5);
  for (int pp : kPipelineSizes) {
    for (int m : {pp, pp + 3, 4 * pp}) {
      const SimulationResult one = run(make_1f1b(pp, m), c);
      const SimulationResult zb = run(make_zb_h1(pp, m), c);
      EXPECT_EQ(one.ranks[0].peak_activations, pp);
      EXPECT_EQ(zb.ranks[0].peak_activations, pp);
      for (int rank = 0; rank < pp; ++rank) {
        EXPECT_EQ(one.ranks[rank].peak_activations, pp - rank);
        EXPECT_LE(zb.ranks[rank].peak_activations, pp) << "ZB-H1 never above 1F1B's peak";
      }
    }
    for (int m : {2 * pp, 5 * pp + 1}) {
      // DualPipeV: PP+1 chunk activations with PP = 2 x ranks stages (DualPipe README).
      const SimulationResult v = run(make_dualpipev(pp, m), c);
      for (int rank = 0; rank < pp; ++rank) {
        EXPECT_EQ(v.ranks[rank].peak_activations, 2 * pp + 1) << "pp=" << pp << " rank " << rank;
      }
    }
  }
}

TEST(Simulate, LatencyDelaysTheStepAndBusyTimeAddsUp) {
  for (const std::string& name : schedule_names()) {
    const int pp = 4;
    const int m = 9;
    const Schedule s = make_schedule({name, pp, m, name == "interleaved" ? 2 : 1});
    StageCosts c = costs(1, 2, 1);
    const SimulationResult fast = run(s, c);
    c.p2p_latency = 0.5;
    const SimulationResult slow = run(s, c);
    EXPECT_GT(slow.step_time, fast.step_time) << name;
    const double per_stage = c.forward + c.full_backward();
    for (int rank = 0; rank < pp; ++rank) {
      EXPECT_NEAR(fast.ranks[rank].busy, m * s.layout.chunks * per_stage, kTolerance) << name;
      EXPECT_NEAR(fast.ranks[rank].bubble, fast.step_time - fast.ranks[rank].busy, kTolerance);
    }
    // Every action of every rank appears in the timeline, in list order, without overlap.
    size_t actions = 0;
    for (const auto& list : s.ranks) actions += list.size();
    ASSERT_EQ(fast.timeline.size(), actions);
    double previous_end = 0;
    int previous_rank = -1;
    for (const TimelineEntry& e : fast.timeline) {
      if (e.rank != previous_rank) previous_end = 0;
      EXPECT_GE(e.start + kTolerance, previous_end) << name;
      EXPECT_GE(e.end + kTolerance, e.start);
      if (is_compute(e.action.kind)) previous_end = e.end;
      previous_rank = e.rank;
    }
  }
}

TEST(Simulate, TextTimelineShowsEveryCompute) {
  const Schedule s = make_1f1b(2, 3);
  const SimulationResult r = run(s, costs(1, 1, 1));
  const std::string text = render_timeline_text(s, r, 1.0);
  EXPECT_EQ(text,
            "rank 0 | F0 F1 .  .  B0 W0 F2 B1 W1 .  B2 W2 \n"
            "rank 1 | .  F0 B0 W0 F1 B1 W1 F2 B2 W2 .  .  \n");
  const std::string csv = timeline_csv(s, r);
  EXPECT_EQ(csv.rfind("rank,kind,microbatch,stage,chunk,start,end,overlapped\n", 0), 0u);
  EXPECT_EQ(std::count(csv.begin(), csv.end(), '\n'), 1 + 2 * 3 * 3);
}

// Processor sharing, by hand: 1F1B at pp=2 with 2 micro-batches, F = B = W = 1, no latency,
// both ranks on one core.
//   [0,1] rank 0 F0 alone.
//   [1,3] rank 1 F0 and rank 0 F1 at half speed each.
//   [3,5] rank 1 B0, W0 alone (rank 0 waits for the gradient, sent after a full backward).
//   [5,7] rank 1 F1 and rank 0 B0 at half speed; [7,9] rank 1 B1 and rank 0 W0 likewise.
//   [9,10] rank 1 W1 alone; [10,12] rank 0 B1, W1 alone.
// The core is never idle, so the step is the total work, 12 (9 with a core per rank).
TEST(SimulateSharedCores, OneCoreTwoRanksByHand) {
  const Schedule s = make_1f1b(2, 2);
  MachineModel one_core;
  one_core.cores = 1;
  const SimulationResult r = simulate(s, costs(1, 1, 1), one_core);
  EXPECT_NEAR(r.step_time, 12, kTolerance);
  EXPECT_NEAR(simulate(s, costs(1, 1, 1)).step_time, 9, kTolerance);
  struct Box {
    int rank;
    ActionKind kind;
    int microbatch;
    double start, end;
  };
  const Box expected[] = {
      {0, ActionKind::Forward, 0, 0, 1},         {0, ActionKind::Forward, 1, 1, 3},
      {0, ActionKind::BackwardInput, 0, 5, 7},   {0, ActionKind::BackwardWeight, 0, 7, 9},
      {0, ActionKind::BackwardInput, 1, 10, 11}, {0, ActionKind::BackwardWeight, 1, 11, 12},
      {1, ActionKind::Forward, 0, 1, 3},         {1, ActionKind::BackwardInput, 0, 3, 4},
      {1, ActionKind::BackwardWeight, 0, 4, 5},  {1, ActionKind::Forward, 1, 5, 7},
      {1, ActionKind::BackwardInput, 1, 7, 9},   {1, ActionKind::BackwardWeight, 1, 9, 10},
  };
  for (const Box& box : expected) {
    const auto it = std::find_if(r.timeline.begin(), r.timeline.end(), [&](const TimelineEntry& e) {
      return e.rank == box.rank && e.action.kind == box.kind &&
             e.action.microbatch == box.microbatch;
    });
    ASSERT_NE(it, r.timeline.end()) << "rank " << box.rank << " m=" << box.microbatch;
    EXPECT_NEAR(it->start, box.start, kTolerance) << to_string(it->action) << " rank " << box.rank;
    EXPECT_NEAR(it->end, box.end, kTolerance) << to_string(it->action) << " rank " << box.rank;
  }
  // Busy is wall time under sharing: rank 0 computed over [0,3], [5,9] and [10,12].
  EXPECT_NEAR(r.ranks[0].busy, 9, kTolerance);
  EXPECT_NEAR(r.ranks[0].bubble, 3, kTolerance);
}

// Four ranks on two cores: bounds that hold whatever the overlap.
TEST(SimulateSharedCores, FourRanksOnTwoCoresBounds) {
  const Schedule s = make_1f1b(4, 8);
  const StageCosts c = costs(1, 2, 1);
  const SimulationResult free_cores = simulate(s, c);
  MachineModel two;
  two.cores = 2;
  const SimulationResult shared = simulate(s, c, two);
  // Sharing never helps, and two cores can do at most twice one core's work per second.
  const double work = 4 * 8 * (c.forward + c.full_backward());
  EXPECT_GT(shared.step_time, free_cores.step_time + 1);
  EXPECT_GE(shared.step_time, work / 2 - kTolerance);
  // No box is shorter than its standalone cost, none longer than ranks / cores = 2 times it.
  for (const TimelineEntry& e : shared.timeline) {
    if (!is_compute(e.action.kind)) continue;
    const double standalone = e.action.kind == ActionKind::Forward         ? c.forward
                              : e.action.kind == ActionKind::BackwardInput ? c.backward_input
                                                                           : c.backward_weight;
    EXPECT_GE(e.end - e.start, standalone - kTolerance) << to_string(e.action);
    EXPECT_LE(e.end - e.start, standalone * 2 + kTolerance) << to_string(e.action);
  }
}

// As many cores as ranks is the one-core-per-rank model, for every schedule.
TEST(SimulateSharedCores, EnoughCoresMatchesOneCorePerRank) {
  const StageCosts c = costs(1, 1.5, 0.5, 2.5);
  for (int pp : {2, 4}) {
    for (const Schedule& s : {make_1f1b(pp, 2 * pp), make_interleaved(pp, 2, 2 * pp),
                              make_zb_h1(pp, 2 * pp), make_dualpipev(pp, 2 * pp)}) {
      for (int cores : {pp, pp + 3}) {
        MachineModel machine;
        machine.cores = cores;
        const SimulationResult a = simulate(s, c);
        const SimulationResult b = simulate(s, c, machine);
        EXPECT_NEAR(a.step_time, b.step_time, kTolerance) << "pp=" << pp << " cores=" << cores;
        ASSERT_EQ(a.timeline.size(), b.timeline.size());
        for (size_t i = 0; i < a.timeline.size(); ++i) {
          EXPECT_NEAR(a.timeline[i].start, b.timeline[i].start, kTolerance);
          EXPECT_NEAR(a.timeline[i].end, b.timeline[i].end, kTolerance);
        }
        for (int r = 0; r < pp; ++r) {
          EXPECT_EQ(a.ranks[r].peak_activations, b.ranks[r].peak_activations);
          EXPECT_NEAR(a.ranks[r].busy, b.ranks[r].busy, kTolerance);
        }
      }
    }
  }
}

}  // namespace
}  // namespace trident::parallel::pp
