#pragma once
// The free blocks a caching allocator keeps for reuse, by size class. A freed block goes back
// to its class and the next request of that class takes it, so a training step that asks for
// the same shapes every time stops calling the system allocator after its first run.
//
// Size classes: multiples of 64 bytes up to 4 KiB, then 8 classes per doubling (a request is
// rounded up by at most 12.5 %), so blocks of nearby sizes (an expert's rows, a received
// all-to-all) share classes and the cache stays bounded by the peak of each class.
#include <cstddef>
#include <cstdint>
#include <map>
#include <vector>

namespace trident {

// The class a request of `bytes` is served from (≥ bytes; 0 for 0).
size_t block_size_class(size_t bytes);

class BlockCache {
 public:
  // A cached block of exactly `size_class` bytes, or null.
  void* take(size_t size_class);
  void put(void* block, size_t size_class);
  // Hands every cached block to `release` and forgets them.
  template <typename Release>
  void drain(Release&& release) {
    for (auto& [size_class, blocks] : free_) {
      for (void* block : blocks) release(block, size_class);
    }
    free_.clear();
    cached_bytes_ = 0;
  }
  int64_t cached_bytes() const { return cached_bytes_; }

 private:
  std::map<size_t, std::vector<void*>> free_;
  int64_t cached_bytes_ = 0;
};

}  // namespace trident
