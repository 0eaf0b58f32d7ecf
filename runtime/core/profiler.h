#pragma once
// A per-op wall-clock profile: ops open a scope with TRIDENT_PROFILE_SCOPE("name"); when the
// profiler is enabled the scope adds its duration to that name's total. Disabled (the default)
// a scope costs one relaxed atomic load. Nested scopes each count their own time, so totals
// of nested names overlap; ops do not nest. While a Trace is enabled (runtime/core/trace.h) every
// scope is also a span on the compute track.
#include <atomic>
#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "runtime/core/trace.h"

namespace trident {

struct ProfileEntry {
  std::string name;
  double seconds = 0.0;
  int64_t calls = 0;
};

class Profiler {
 public:
  static void enable(bool on);
  static bool enabled() { return enabled_.load(std::memory_order_relaxed); }
  static void reset();
  static void record(const char* name, double seconds);
  // Entries sorted by descending time.
  static std::vector<ProfileEntry> snapshot();

 private:
  static std::atomic<bool> enabled_;
};

class ProfileScope {
 public:
  explicit ProfileScope(const char* name)
      : name_(Profiler::enabled() || Trace::enabled() ? name : nullptr) {
    if (name_) start_ = std::chrono::steady_clock::now();
  }
  ~ProfileScope() {
    if (name_) {
      const auto end = std::chrono::steady_clock::now();
      if (Profiler::enabled()) {
        Profiler::record(name_, std::chrono::duration<double>(end - start_).count());
      }
      if (Trace::enabled()) {
        Trace::record(TraceTrack::Compute, name_,
                      std::chrono::duration_cast<std::chrono::nanoseconds>(start_.time_since_epoch()).count(),
                      std::chrono::duration_cast<std::chrono::nanoseconds>(end.time_since_epoch()).count());
      }
    }
  }
  ProfileScope(const ProfileScope&) = delete;
  ProfileScope& operator=(const ProfileScope&) = delete;

 private:
  const char* name_;
  std::chrono::steady_clock::time_point start_;
};

}  // namespace trident

#define TRIDENT_PROFILE_CONCAT_INNER(a, b) a##b
#define TRIDENT_PROFILE_CONCAT(a, b) TRIDENT_PROFILE_CONCAT_INNER(a, b)
#define TRIDENT_PROFILE_SCOPE(name) \
  ::trident::ProfileScope TRIDENT_PROFILE_CONCAT(trident_profile_scope_, __LINE__)(name)
