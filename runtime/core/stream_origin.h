#pragma once
// Device memory on the CPU backend: memory a stream's work allocated belongs to that stream
// until the host has synchronized with the work, exactly as a GPU result is not the host's
// before a stream or event synchronize. Storage made inside a work item records the item here;
// a host thread that touches it (Tensor::raw_data and everything built on it) before
// synchronizing fails, naming the stream and the item, whether or not the item happens to have
// finished by then. Stream threads may use it: their order is what events are for.
#include <atomic>
#include <cstdint>
#include <memory>
#include <string>

namespace trident {

struct StreamOrigin {
  // The stream's count of items the host has synchronized with (Stream::synchronize, a
  // completed query, or an Event after the item); shared so it outlives the stream.
  std::shared_ptr<std::atomic<uint64_t>> host_synced;
  uint64_t item = 0;  // this item's place in its stream's queue, from 1
  std::string stream;
  std::string what;

  bool host_may_read() const { return host_synced->load(std::memory_order_acquire) >= item; }
};

// The work item this thread is running (null on threads that are not stream threads).
const std::shared_ptr<const StreamOrigin>& current_stream_item();
void set_current_stream_item(std::shared_ptr<const StreamOrigin> item);

// The host thread touched `tensor`, made by `origin`, before synchronizing with it.
[[noreturn]] void fail_unsynchronized_host_access(const StreamOrigin& origin,
                                                  const std::string& tensor);

}  // namespace trident
