#include "launch/trace_session.h"

#include "runtime/core/trace.h"

namespace trident::launch {

TraceSession::TraceSession(std::string dir, const parallel::ParallelContext& context)
    : dir_(std::move(dir)), context_(context) {
  if (!dir_.empty()) Trace::enable(true);
}

TraceSession::~TraceSession() {
  if (!dir_.empty()) Trace::enable(false);
}

void TraceSession::write() {
  if (dir_.empty()) return;
  Trace::enable(false);
  context_.drain_traces();
  Trace::write(dir_, context_.coords().rank);
}

}  // namespace trident::launch
