#pragma once
// The communicator side of fault injection (runtime/core/fault_injection.h): with TRIDENT_FAULT
// set, `trident pretrain` wraps each of its communicators in a decorator whose operations are
// fault points named after the operation ("all_reduce", "all_to_all", "all_gather",
// "reduce_scatter", "broadcast", "send", "recv", "barrier"). The point is reached after the
// operation is posted, so the victim dies with its part of the exchange in flight: its peers
// are inside the collective, mid-step ("all_reduce" of the gradient buckets) or mid-all-to-all
// ("all_to_all" of the expert dispatch), when it disappears. Without TRIDENT_FAULT nothing is
// wrapped.
#include "runtime/train/pretrain_run.h"

namespace trident::cli {

// Wraps options.dp / tp / ep / edp / pp when TRIDENT_FAULT is set; a no-op otherwise.
void inject_comm_faults(train::PretrainOptions& options);

}  // namespace trident::cli
