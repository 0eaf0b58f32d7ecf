#include "runtime/core/fault_injection.h"

#include <atomic>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "runtime/core/error.h"

namespace trident {

namespace {

struct FaultPlan {
  bool armed = false;
  std::string point;
  int rank = -1;
  long at = 0;
};

// Parsed once; a malformed TRIDENT_FAULT is reported and ignored (it is a test hook).
const FaultPlan& plan() {
  static const FaultPlan parsed = [] {
    FaultPlan p;
    const char* text = std::getenv("TRIDENT_FAULT");
    if (text == nullptr || *text == '\0') return p;
    char point[64] = {};
    if (std::sscanf(text, "%63[^:]:%d:%ld", point, &p.rank, &p.at) != 3 || p.at < 1) {
      std::fprintf(stderr, "TRIDENT_FAULT='%s' ignored (expected POINT:RANK:N, N >= 1)\n", text);
      return p;
    }
    p.point = point;
    p.armed = true;
    return p;
  }();
  return parsed;
}

}  // namespace

bool fault_injection_armed() { return plan().armed; }

void fault_point(const char* name) {
  const FaultPlan& p = plan();
  if (!p.armed || p.point != name || current_rank() != p.rank) return;
  // One counter: only one point is armed per process.
  static std::atomic<long> arrivals{0};
  if (arrivals.fetch_add(1) + 1 != p.at) return;
  std::fprintf(stderr, "[rank %d] fault injection: SIGKILL at %s #%ld\n", p.rank, name, p.at);
  std::fflush(stderr);
  std::raise(SIGKILL);
}

}  // namespace trident
