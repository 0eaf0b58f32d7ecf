#include "parallel/comm/thread_slice.h"

#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace trident::parallel {

namespace {
// The kernel's struct sched_attr (include/uapi/linux/sched/types.h); glibc 2.36 has no wrapper.
struct SchedAttr {
  uint32_t size;
  uint32_t sched_policy;
  uint64_t sched_flags;
  int32_t sched_nice;
  uint32_t sched_priority;
  uint64_t sched_runtime;  // for SCHED_OTHER: the requested slice (EEVDF)
  uint64_t sched_deadline;
  uint64_t sched_period;
};
constexpr uint32_t kSchedOther = 0;
}  // namespace

bool request_time_slice(uint64_t nanoseconds) {
#ifdef SYS_sched_setattr
  SchedAttr attr;
  std::memset(&attr, 0, sizeof(attr));
  attr.size = sizeof(attr);
  attr.sched_policy = kSchedOther;
  errno = 0;
  const int nice = getpriority(PRIO_PROCESS, static_cast<id_t>(syscall(SYS_gettid)));
  attr.sched_nice = errno == 0 ? nice : 0;
  attr.sched_runtime = nanoseconds;
  return syscall(SYS_sched_setattr, 0, &attr, 0) == 0;
#else
  (void)nanoseconds;
  return false;
#endif
}

}  // namespace trident::parallel
