#include "runtime/train/grpo/lockstep.h"

#include "parallel/comm/sum_in_rank_order.h"

namespace trident::train::grpo {

ForwardLockstep::ForwardLockstep(parallel::comm::Communicator* group)
    : group_(group != nullptr && group->size() > 1 ? group : nullptr) {}

int ForwardLockstep::working_ranks(bool working) {
  return static_cast<int>(parallel::comm::sum_in_rank_order(group_, working ? 1.0 : 0.0));
}

void ForwardLockstep::before_forward() {
  if (active()) working_ranks(true);
}

void ForwardLockstep::finish(const std::function<void()>& filler) {
  if (!active()) return;
  while (working_ranks(false) > 0) filler();
}

}  // namespace trident::train::grpo
