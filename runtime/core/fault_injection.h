#pragma once
// Fault injection for the robustness tests (tests/faults): TRIDENT_FAULT="POINT:RANK:N" makes
// world rank RANK kill itself with SIGKILL the N-th time it reaches fault_point("POINT"), the
// way a node failure or the OOM killer ends a process: no handler, no flush, no goodbye.
// Points: "checkpoint_write" (after each tensor a save writes: mid-save), and those of the
// communicator decorator of parallel/comm/fault_point_communicator.h ("all_reduce", "all_to_all",
// ...). Without TRIDENT_FAULT a fault point is one relaxed load.
namespace trident {

void fault_point(const char* name);

// Whether TRIDENT_FAULT names a valid plan (the communicator decorator is installed only then).
bool fault_injection_armed();

}  // namespace trident
