#pragma once
// The scheduler's time slice of the calling thread (Linux EEVDF, kernel 6.12+).
//
// When ranks share cores, a thread that wakes up (data arrived, a timer fired) waits for the
// computing thread on its core to use up its slice before it runs: milliseconds by default,
// which turns every wake-up of a waiting rank into a delay of that order. A thread that asks
// for a shorter slice gets an earlier deadline and preempts a longer-slice thread at once.
// Latency-sensitive threads that mostly sleep (MPI progress, link timers) ask for a short one.
#include <cstdint>

namespace trident::parallel {

// Requests a slice of `nanoseconds` (the kernel clamps it to 0.1–100 ms) for the calling
// thread, keeping its policy and nice value. Returns false where the kernel does not support
// it (older kernels): the thread then keeps the default slice.
bool request_time_slice(uint64_t nanoseconds);

}  // namespace trident::parallel
