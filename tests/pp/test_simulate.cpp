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

namespace trident::pp {
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

}  // namespace
}  // namespace trident::pp
