#pragma once
// Every tensor byte goes through here, so current and peak usage per device are known
// exactly. The planner's memory predictions are checked against these counters.

#include <cstddef>
#include <cstdint>

#include "runtime/core/dtype.h"

namespace trident {

struct MemoryStats {
  int64_t current_bytes = 0;
  int64_t peak_bytes = 0;
  int64_t total_allocations = 0;
};

class Allocator {
 public:
  // The process-wide allocator of one device (CPU or the current CUDA device).
  static Allocator& instance(Device device);

  void* allocate(size_t bytes);
  void release(void* pointer, size_t bytes);

  MemoryStats stats() const;
  // Peak := current, so a phase's own peak can be measured (e.g. one training step).
  void reset_peak();

  Device device() const { return device_; }

 private:
  explicit Allocator(Device device) : device_(device) {}
  Device device_;
  struct Counters;
  Counters& counters() const;
};

}  // namespace trident
