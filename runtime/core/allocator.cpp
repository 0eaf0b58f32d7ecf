#include "runtime/core/allocator.h"

#include <sys/mman.h>

#include <cstdlib>
#include <cstring>
#include <mutex>

#include "runtime/core/block_cache.h"
#include "runtime/core/error.h"

#ifdef TRIDENT_WITH_CUDA
#include <cuda_runtime.h>

#include "runtime/core/cuda_check.h"
#endif

namespace trident {

struct Allocator::State {
  mutable std::mutex mutex;
  BlockCache cache;
  MemoryStats stats;
};

namespace {

// 64-byte alignment keeps rows cache-line aligned and satisfies AVX-512 loads; every size class
// is a multiple of it.
constexpr size_t kCpuAlignment = 64;

// Blocks of 2 MiB and more are placed on 2 MiB boundaries and offered to the kernel for
// transparent huge pages (MADV_HUGEPAGE; the usual setting, "madvise", uses them only where
// asked): a first touch then faults one 2 MiB page instead of 512 small ones. Page faults
// had been a fifth of `trident score`'s time, whose every activation is touched once.
constexpr size_t kHugePage = size_t{2} << 20;

// TRIDENT_HUGE_PAGES=0 leaves large blocks to the system's defaults (small pages unless THP is
// "always"), for hosts where huge pages are unwanted and for measuring what they bring.
bool huge_pages_wanted() {
  static const bool wanted = [] {
    const char* setting = std::getenv("TRIDENT_HUGE_PAGES");
    return setting == nullptr || std::strcmp(setting, "0") != 0;
  }();
  return wanted;
}

void* allocate_host(size_t bytes) {
  if (bytes < kHugePage || !huge_pages_wanted()) {
    return std::aligned_alloc(kCpuAlignment, bytes);
  }
  const size_t rounded = (bytes + kHugePage - 1) / kHugePage * kHugePage;
  void* pointer = std::aligned_alloc(kHugePage, rounded);
  // Advice only: where the kernel has no huge pages, small ones serve as before.
  if (pointer != nullptr) madvise(pointer, rounded, MADV_HUGEPAGE);
  return pointer;
}

bool sanitized_build() {
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
  return true;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
  return true;
#else
  return false;
#endif
#else
  return false;
#endif
}

bool caching_wanted() {
  const char* setting = std::getenv("TRIDENT_ALLOCATOR_CACHE");
  if (setting != nullptr && std::strcmp(setting, "0") == 0) return false;
  return !sanitized_build();
}

void raise_peak(int64_t now, int64_t& peak) {
  if (now > peak) peak = now;
}

}  // namespace

Allocator::Allocator(Device device) : device_(device), caching_(caching_wanted()) {}

Allocator& Allocator::instance(Device device) {
  static Allocator cpu(Device::CPU);
  static Allocator cuda(Device::CUDA);
  static Allocator cpu_device(Device::CPUDevice);
  switch (device) {
    case Device::CPU:
      return cpu;
    case Device::CUDA:
      return cuda;
    case Device::CPUDevice:
      return cpu_device;
  }
  return cpu;
}

Allocator::State& Allocator::state() const {
  // Never destroyed: tensors held by other static objects are released after main returns.
  static State* const cpu = new State;
  static State* const cuda = new State;
  static State* const cpu_device = new State;
  switch (device_) {
    case Device::CPU:
      return *cpu;
    case Device::CUDA:
      return *cuda;
    case Device::CPUDevice:
      return *cpu_device;
  }
  return *cpu;
}

void* Allocator::system_allocate(size_t bytes) {
  void* pointer = nullptr;
  if (in_host_ram(device_)) {
    pointer = allocate_host(bytes);
    TRIDENT_CHECK_IO(pointer != nullptr, "out of host memory allocating ", bytes, " bytes (",
                     stats().current_bytes, " bytes in tensors, ", stats().cached_bytes,
                     " cached)");
    return pointer;
  }
#ifdef TRIDENT_WITH_CUDA
  TRIDENT_CHECK_CUDA(cudaMalloc(&pointer, bytes));
  return pointer;
#else
  TRIDENT_USER_FAIL(
      "a CUDA tensor was requested but this build has no CUDA support "
      "(rebuild with -DTRIDENT_CUDA=ON on a machine with the CUDA toolkit)");
#endif
}

void Allocator::system_release(void* pointer) {
  if (in_host_ram(device_)) {
    std::free(pointer);
    return;
  }
#ifdef TRIDENT_WITH_CUDA
  cudaFree(pointer);  // errors on free cannot be reported from a destructor
#endif
}

void* Allocator::allocate(size_t bytes) {
  State& s = state();
  const size_t size_class = block_size_class(bytes);
  void* pointer = nullptr;
  {
    std::lock_guard<std::mutex> lock(s.mutex);
    ++s.stats.total_allocations;
    if (bytes == 0) return nullptr;
    if (caching_) pointer = s.cache.take(size_class);
  }
  if (pointer == nullptr) {
    pointer = system_allocate(size_class);
    std::lock_guard<std::mutex> lock(s.mutex);
    ++s.stats.system_allocations;
    s.stats.reserved_bytes += static_cast<int64_t>(size_class);
    raise_peak(s.stats.reserved_bytes, s.stats.peak_reserved_bytes);
  }
  std::lock_guard<std::mutex> lock(s.mutex);
  s.stats.current_bytes += static_cast<int64_t>(bytes);
  raise_peak(s.stats.current_bytes, s.stats.peak_bytes);
  return pointer;
}

void Allocator::release(void* pointer, size_t bytes) {
  if (pointer == nullptr) return;
  State& s = state();
  const size_t size_class = block_size_class(bytes);
  {
    std::lock_guard<std::mutex> lock(s.mutex);
    s.stats.current_bytes -= static_cast<int64_t>(bytes);
    if (caching_) {
      s.cache.put(pointer, size_class);
      return;
    }
    s.stats.reserved_bytes -= static_cast<int64_t>(size_class);
  }
  system_release(pointer);
}

MemoryStats Allocator::stats() const {
  State& s = state();
  std::lock_guard<std::mutex> lock(s.mutex);
  MemoryStats out = s.stats;
  out.cached_bytes = s.cache.cached_bytes();
  return out;
}

void Allocator::reset_peak() {
  State& s = state();
  std::lock_guard<std::mutex> lock(s.mutex);
  s.stats.peak_bytes = s.stats.current_bytes;
  s.stats.peak_reserved_bytes = s.stats.reserved_bytes;
}

void Allocator::release_cached() {
  State& s = state();
  std::lock_guard<std::mutex> lock(s.mutex);
  s.cache.drain([&](void* block, size_t size_class) {
    s.stats.reserved_bytes -= static_cast<int64_t>(size_class);
    system_release(block);
  });
}

}  // namespace trident
