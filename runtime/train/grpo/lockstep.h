#pragma once
// Keeps the forwards of an expert-parallel group paired. Under expert parallelism every MoE layer
// forward is a collective over the EP group, so each rank must run as many model forwards as the
// others, in the same order, even when it has fewer rows to process (fewer prompt groups, shorter
// completions). A rank announces each real forward (one all-reduce of "still working"); once it
// has none left it runs filler forwards — one tiny row whose result is discarded — for as long
// as another rank still works. Every all-reduce round pairs exactly one forward per rank.
#include <functional>

#include "parallel/comm/communicator.h"

namespace trident::train::grpo {

class ForwardLockstep {
 public:
  // group: the EP group; null or one rank: every call is a no-op.
  explicit ForwardLockstep(parallel::comm::Communicator* group);

  bool active() const { return group_ != nullptr; }
  // Before each real forward of this rank.
  void before_forward();
  // After this rank's last real forward of the phase: runs `filler` (one forward, or one forward
  // and backward, of the same model the others run) until no rank has real work left.
  void finish(const std::function<void()>& filler);

 private:
  int working_ranks(bool working);
  parallel::comm::Communicator* group_ = nullptr;
};

}  // namespace trident::train::grpo
