// The schedule generators. Each builds, per rank, the order of its compute actions; the sends
// and receives are added by with_communication. Where a backward is "full" (B and W fused),
// W is emitted right after its B (marked fused) so every (micro-batch, stage) still has one
// F, one B and one W.
#include <algorithm>
#include <deque>

#include "parallel/pp/schedule.h"
#include "runtime/core/error.h"

namespace trident::parallel::pp {

namespace {

Action compute(ActionKind kind, int microbatch, int stage) {
  return Action{kind, microbatch, stage, -1, false, false};
}

void full_backward(std::vector<Action>& list, int microbatch, int stage) {
  list.push_back(compute(ActionKind::BackwardInput, microbatch, stage));
  list.back().fused_weight = true;
  list.push_back(compute(ActionKind::BackwardWeight, microbatch, stage));
}

void check_sizes(int pp, int microbatches) {
  TRIDENT_USER_CHECK(pp >= 1, "--pp must be at least 1, got ", pp);
  TRIDENT_USER_CHECK(microbatches >= 1, "--microbatches must be at least 1, got ", microbatches);
}

Schedule finish(std::string name, const StageLayout& layout, int microbatches,
                const std::vector<std::vector<Action>>& compute_lists) {
  return Schedule{std::move(name), layout, microbatches, with_communication(layout, compute_lists)};
}

}  // namespace

// 1F1B: rank r runs pp-r-1 warm-up forwards, then alternates one forward and one full
// backward, then drains the remaining backwards. Rank r holds at most pp-r micro-batches.
Schedule make_1f1b(int pp, int microbatches) {
  check_sizes(pp, microbatches);
  std::vector<std::vector<Action>> lists(pp);
  for (int r = 0; r < pp; ++r) {
    const int warmup = std::min(pp - r - 1, microbatches);
    std::vector<Action>& list = lists[r];
    for (int m = 0; m < warmup; ++m) list.push_back(compute(ActionKind::Forward, m, r));
    for (int m = 0; m < microbatches; ++m) {
      if (warmup + m < microbatches) list.push_back(compute(ActionKind::Forward, warmup + m, r));
      full_backward(list, m, r);
    }
  }
  return finish("1f1b", StageLayout::linear(pp), microbatches, lists);
}

// Interleaved 1F1B with v chunks per rank. Micro-batches go in groups of pp (the last group
// also takes the remainder when pp does not divide the count); within a group every chunk runs the
// whole group before the next chunk starts. Backwards take the same groups with the chunks in
// reverse. Rank r warms up with 2(pp-r-1) + (v-1)pp forwards (capped at the total), then
// alternates one forward and one full backward.
Schedule make_interleaved(int pp, int virtual_stages, int microbatches) {
  check_sizes(pp, microbatches);
  TRIDENT_USER_CHECK(virtual_stages >= 1, "--virtual must be at least 1, got ", virtual_stages);
  const StageLayout layout = StageLayout::interleaved(pp, virtual_stages);
  struct Item {
    int microbatch;
    int chunk;
  };
  std::vector<Item> forward_order;
  std::vector<Item> backward_order;
  int largest_group = 0;
  for (int first = 0, last = 0; first < microbatches; first = last) {
    // The last group takes the remainder (pp to 2pp-1 micro-batches): a group smaller than
    // pp lets a rank reach a chunk's forward before the previous chunk's output has come
    // round the ring, which deadlocks the warm-up counts below.
    last = first + 2 * pp > microbatches ? microbatches : first + pp;
    largest_group = std::max(largest_group, last - first);
    for (int c = 0; c < virtual_stages; ++c) {
      for (int m = first; m < last; ++m) forward_order.push_back({m, c});
    }
    for (int c = virtual_stages - 1; c >= 0; --c) {
      for (int m = first; m < last; ++m) backward_order.push_back({m, c});
    }
  }
  const int total = static_cast<int>(forward_order.size());
  std::vector<std::vector<Action>> lists(pp);
  for (int r = 0; r < pp; ++r) {
    const int warmup = std::min(2 * (pp - r - 1) + (virtual_stages - 1) * largest_group, total);
    std::vector<Action>& list = lists[r];
    auto forward = [&](int k) {
      list.push_back(compute(ActionKind::Forward, forward_order[k].microbatch,
                             layout.stage_of(r, forward_order[k].chunk)));
    };
    for (int k = 0; k < warmup; ++k) forward(k);
    for (int k = 0; k < total; ++k) {
      if (warmup + k < total) forward(warmup + k);
      full_backward(list, backward_order[k].microbatch,
                    layout.stage_of(r, backward_order[k].chunk));
    }
  }
  return finish("interleaved", layout, microbatches, lists);
}

// ZB-H1: the 1F1B order with B and W split. Rank r delays each W by r steady iterations, so
// B reaches the earlier stages sooner and the delayed Ws fill what would have been the
// cool-down bubble. The in-flight count on every rank peaks at pp (the warm-up pp-r-1, plus
// one, plus r delayed Ws), the same peak as rank 0 of 1F1B.
Schedule make_zb_h1(int pp, int microbatches) {
  check_sizes(pp, microbatches);
  std::vector<std::vector<Action>> lists(pp);
  for (int r = 0; r < pp; ++r) {
    const int warmup = std::min(pp - r - 1, microbatches);
    const int delay = r;
    std::vector<Action>& list = lists[r];
    for (int m = 0; m < warmup; ++m) list.push_back(compute(ActionKind::Forward, m, r));
    int next_weight = 0;
    for (int m = 0; m < microbatches; ++m) {
      if (warmup + m < microbatches) list.push_back(compute(ActionKind::Forward, warmup + m, r));
      list.push_back(compute(ActionKind::BackwardInput, m, r));
      if (m - delay >= 0) list.push_back(compute(ActionKind::BackwardWeight, next_weight++, r));
    }
    while (next_weight < microbatches) {
      list.push_back(compute(ActionKind::BackwardWeight, next_weight++, r));
    }
  }
  return finish("zb-h1", StageLayout::linear(pp), microbatches, lists);
}

namespace {

// Builds one rank's DualPipeV list. Chunk 0 is stage r (the descending half of the V), chunk
// 1 is stage 2pp-1-r (the ascending half, ending in the loss on rank 0).
class DualPipeVRank {
 public:
  DualPipeVRank(const StageLayout& layout, int rank) {
    stage_[0] = layout.stage_of(rank, 0);
    stage_[1] = layout.stage_of(rank, 1);
  }

  void forward(int chunk) {
    list_.push_back(compute(ActionKind::Forward, next_f_[chunk]++, stage_[chunk]));
  }

  // Backward for inputs; its W follows at once unless zero-bubble deferral is on, in which
  // case it waits in a queue for a weight() call to fill a gap.
  void backward(int chunk, bool defer_weight) {
    const int m = next_b_[chunk]++;
    if (defer_weight) {
      list_.push_back(compute(ActionKind::BackwardInput, m, stage_[chunk]));
      deferred_.push_back(compute(ActionKind::BackwardWeight, m, stage_[chunk]));
    } else {
      full_backward(list_, m, stage_[chunk]);
    }
  }

  void weight() {
    TRIDENT_CHECK(!deferred_.empty(), "DualPipeV: no deferred W to run");
    list_.push_back(deferred_.front());
    deferred_.pop_front();
  }

  // One forward chunk overlapped with one full backward chunk (the F&B pair).
  void forward_backward(int forward_chunk, int backward_chunk) {
    forward(forward_chunk);
    list_.back().overlapped = true;
    backward(backward_chunk, false);
  }

  std::vector<Action> take() {
    TRIDENT_CHECK(deferred_.empty(), "DualPipeV: ", deferred_.size(), " W left over");
    return std::move(list_);
  }

 private:
  int stage_[2] = {0, 0};
  int next_f_[2] = {0, 0};
  int next_b_[2] = {0, 0};
  std::deque<Action> deferred_;
  std::vector<Action> list_;
};

}  // namespace

// DualPipeV in eight phases per rank r (pp ranks, M micro-batches, M >= 2pp):
//   1. 2(pp-r-1) forwards of chunk 0 (filling the descending half),
//   2. r+1 pairs of forwards, chunk 0 then chunk 1,
//   3. pp-r-1 times: B of chunk 1 (W deferred), a deferred W, F of chunk 1,
//   4. M-2pp+r+1 times the steady pair of F&B blocks: F0&B1, then F1&B0 (the last rank's
//      first F0 and B1 run one after the other, not overlapped: its F0 feeds its own F1),
//   5. pp-r-1 times: full B of chunk 1, then the block F1&B0,
//   6. r+1 pairs of backwards, chunk 1 then chunk 0, switching to deferred W half way,
//   7. pp-r-1 times: a deferred W, then B of chunk 0 with its W deferred,
//   8. the r+1 W still deferred.
// Every rank runs M forwards and M backwards of each chunk.
Schedule make_dualpipev(int pp, int microbatches) {
  check_sizes(pp, microbatches);
  TRIDENT_USER_CHECK(microbatches >= 2 * pp, "--microbatches: schedule 'dualpipev' with pp=", pp,
                     " needs at least 2*pp = ", 2 * pp, " micro-batches, got ", microbatches);
  const StageLayout layout = StageLayout::v_shape(pp);
  std::vector<std::vector<Action>> lists(pp);
  for (int r = 0; r < pp; ++r) {
    DualPipeVRank rank(layout, r);
    const bool last_rank = r == pp - 1;
    for (int i = 0; i < 2 * (pp - r - 1); ++i) rank.forward(0);
    for (int i = 0; i < r + 1; ++i) {
      rank.forward(0);
      rank.forward(1);
    }
    for (int i = 0; i < pp - r - 1; ++i) {
      rank.backward(1, true);
      rank.weight();
      rank.forward(1);
    }
    for (int i = 0; i < microbatches - 2 * pp + r + 1; ++i) {
      if (i == 0 && last_rank) {
        rank.forward(0);
        rank.backward(1, false);
      } else {
        rank.forward_backward(0, 1);
      }
      rank.forward_backward(1, 0);
    }
    for (int i = 0; i < pp - r - 1; ++i) {
      rank.backward(1, false);
      rank.forward_backward(1, 0);
    }
    bool defer = false;
    const int half = (r + 1) / 2;
    for (int i = 0; i < r + 1; ++i) {
      if (i == half && r % 2 == 1) defer = true;
      rank.backward(1, defer);
      if (i == half && r % 2 == 0) defer = true;
      rank.backward(0, defer);
    }
    for (int i = 0; i < pp - r - 1; ++i) {
      rank.weight();
      rank.backward(0, true);
    }
    for (int i = 0; i < r + 1; ++i) rank.weight();
    lists[r] = rank.take();
  }
  return finish("dualpipev", layout, microbatches, lists);
}

}  // namespace trident::parallel::pp
