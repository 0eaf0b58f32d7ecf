#pragma once
// The communicator side of fault injection (runtime/core/fault_injection.h): with TRIDENT_FAULT
// set, the parallel context wraps each of its groups in this decorator, whose operations are
// fault points named after the operation ("all_reduce", "all_to_all", "all_gather",
// "reduce_scatter", "broadcast", "send", "recv", "barrier"). The point is reached after the
// operation is posted, so the victim dies with its part of the exchange in flight: its peers
// are inside the collective, mid-step ("all_reduce" of the gradient buckets) or mid-all-to-all
// ("all_to_all" of the expert dispatch), when it disappears. Without TRIDENT_FAULT nothing is
// wrapped.
#include <functional>

#include "parallel/comm/forwarding_communicator.h"

namespace trident::parallel::comm {

class FaultPointCommunicator final : public ForwardingCommunicator {
 public:
  using ForwardingCommunicator::ForwardingCommunicator;

 private:
  WorkHandle decorate(const std::function<WorkHandle()>& post, const Exchange& exchange) override;
};

}  // namespace trident::parallel::comm
