#pragma once
// Every tensor byte goes through here, so current and peak usage per device are known
// exactly. The planner's memory predictions are checked against these counters.
//
// A caching allocator per device: a released block is kept in its size class
// (block_cache.h) and handed to the next request of that class, so a training step that asks
// for the same shapes each time allocates nothing from the system once it has run. The
// counters say how much is in tensors (current, peak), how much is held from the system
// (reserved: in use, rounded up to the class, plus cached) and how often the system was asked.
//
// Reuse is safe where a block's last user is done when it is released, which plain malloc/free
// asked as well: on the CPU a layer's fence synchronizes its streams before its buffers go, and
// every CUDA op runs on the default stream (ops/dispatch.cpp), which orders a reuse after the
// last use. Caching is off in sanitizer builds (a reused
// block would hide a use after free from ASan) and with TRIDENT_ALLOCATOR_CACHE=0.
#include <cstddef>
#include <cstdint>

#include "runtime/core/dtype.h"

namespace trident {

struct MemoryStats {
  int64_t current_bytes = 0;        // in tensors (the sizes asked for)
  int64_t peak_bytes = 0;           // highest current_bytes since the last reset_peak()
  int64_t total_allocations = 0;    // tensor allocations
  int64_t reserved_bytes = 0;       // held from the system: in use (class sizes) + cached
  int64_t peak_reserved_bytes = 0;  // highest reserved_bytes since the last reset_peak()
  int64_t cached_bytes = 0;         // released blocks kept for reuse
  int64_t system_allocations = 0;   // requests the cache could not serve
  // The share of reserved memory not in tensors (cached blocks and class rounding), now and at
  // the high-water marks since the last reset_peak().
  double fragmentation() const { return unused_share(current_bytes, reserved_bytes); }
  double peak_fragmentation() const { return unused_share(peak_bytes, peak_reserved_bytes); }

 private:
  static double unused_share(int64_t used, int64_t held) {
    return held > 0 ? 1.0 - static_cast<double>(used) / static_cast<double>(held) : 0.0;
  }
};

class Allocator {
 public:
  // The process-wide allocator of one device (CPU or the current CUDA device).
  static Allocator& instance(Device device);

  void* allocate(size_t bytes);
  void release(void* pointer, size_t bytes);

  MemoryStats stats() const;
  // Peaks := current, so a phase's own peak can be measured (e.g. one training step).
  void reset_peak();
  // Returns every cached block to the system.
  void release_cached();
  bool caching() const { return caching_; }

  Device device() const { return device_; }

 private:
  explicit Allocator(Device device);
  void* system_allocate(size_t bytes);
  void system_release(void* pointer);

  Device device_;
  bool caching_ = true;
  struct State;
  State& state() const;
};

}  // namespace trident
