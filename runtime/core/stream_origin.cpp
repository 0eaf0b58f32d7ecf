#include "runtime/core/stream_origin.h"

#include "runtime/core/error.h"

namespace trident {

namespace {
thread_local std::shared_ptr<const StreamOrigin> t_current_item;
}  // namespace

const std::shared_ptr<const StreamOrigin>& current_stream_item() { return t_current_item; }

void set_current_stream_item(std::shared_ptr<const StreamOrigin> item) {
  t_current_item = std::move(item);
}

void fail_unsynchronized_host_access(const StreamOrigin& origin, const std::string& tensor) {
  TRIDENT_FAIL("the host touched ", tensor, ", which stream '", origin.stream, "' made in '",
               origin.what, "', before synchronizing with that work: call synchronize() on the ",
               "stream, or on an event recorded after the item, first (docs/streams.md)");
}

}  // namespace trident
