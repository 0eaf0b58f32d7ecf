#include "runtime/core/allocator.h"

#include <atomic>
#include <cstdlib>
#include <new>

#include "runtime/core/error.h"

#ifdef TRIDENT_WITH_CUDA
#include <cuda_runtime.h>

#include "runtime/core/cuda_check.h"
#endif

namespace trident {

struct Allocator::Counters {
  std::atomic<int64_t> current{0};
  std::atomic<int64_t> peak{0};
  std::atomic<int64_t> allocations{0};
};

namespace {
// 64-byte alignment keeps rows cache-line aligned and satisfies AVX-512 loads.
constexpr size_t kCpuAlignment = 64;

}  // namespace

Allocator& Allocator::instance(Device device) {
  static Allocator cpu(Device::CPU);
  static Allocator cuda(Device::CUDA);
  return device == Device::CPU ? cpu : cuda;
}

Allocator::Counters& Allocator::counters() const {
  static Counters cpu;
  static Counters cuda;
  return device_ == Device::CPU ? cpu : cuda;
}

void* Allocator::allocate(size_t bytes) {
  void* pointer = nullptr;
  if (bytes > 0) {
    if (device_ == Device::CPU) {
      const size_t rounded = (bytes + kCpuAlignment - 1) / kCpuAlignment * kCpuAlignment;
      pointer = std::aligned_alloc(kCpuAlignment, rounded);
      TRIDENT_CHECK_IO(pointer != nullptr, "out of host memory allocating ", bytes,
                       " bytes (current ", counters().current.load(), " bytes in tensors)");
    } else {
#ifdef TRIDENT_WITH_CUDA
      TRIDENT_CHECK_CUDA(cudaMalloc(&pointer, bytes));
#else
      TRIDENT_USER_FAIL("a CUDA tensor was requested but this build has no CUDA support "
                        "(rebuild with -DTRIDENT_CUDA=ON on a machine with the CUDA toolkit)");
#endif
    }
  }
  Counters& c = counters();
  const int64_t now = c.current.fetch_add(static_cast<int64_t>(bytes)) + static_cast<int64_t>(bytes);
  int64_t peak = c.peak.load();
  while (now > peak && !c.peak.compare_exchange_weak(peak, now)) {
  }
  c.allocations.fetch_add(1);
  return pointer;
}

void Allocator::release(void* pointer, size_t bytes) {
  if (pointer != nullptr) {
    if (device_ == Device::CPU) {
      std::free(pointer);
    } else {
#ifdef TRIDENT_WITH_CUDA
      cudaFree(pointer);  // errors on free cannot be reported from a destructor
#endif
    }
  }
  counters().current.fetch_sub(static_cast<int64_t>(bytes));
}

MemoryStats Allocator::stats() const {
  const Counters& c = counters();
  return MemoryStats{c.current.load(), c.peak.load(), c.allocations.load()};
}

void Allocator::reset_peak() {
  Counters& c = counters();
  c.peak.store(c.current.load());
}

}  // namespace trident
