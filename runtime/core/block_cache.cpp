#include "runtime/core/block_cache.h"

namespace trident {

size_t block_size_class(size_t bytes) {
  constexpr size_t kSmallStep = 64;
  constexpr size_t kSmallLimit = 4096;
  if (bytes <= kSmallLimit) return (bytes + kSmallStep - 1) / kSmallStep * kSmallStep;
  // 8 classes between 2^k and 2^(k+1): steps of 2^(k-3).
  size_t power = kSmallLimit;
  while (power * 2 < bytes) power *= 2;
  const size_t step = power / 8;
  return (bytes + step - 1) / step * step;
}

void* BlockCache::take(size_t size_class) {
  auto it = free_.find(size_class);
  if (it == free_.end() || it->second.empty()) return nullptr;
  void* block = it->second.back();
  it->second.pop_back();
  cached_bytes_ -= static_cast<int64_t>(size_class);
  return block;
}

void BlockCache::put(void* block, size_t size_class) {
  free_[size_class].push_back(block);
  cached_bytes_ += static_cast<int64_t>(size_class);
}

}  // namespace trident
