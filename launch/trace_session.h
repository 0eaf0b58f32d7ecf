#pragma once
// A command's Chrome/Perfetto trace (logging.trace_dir / --trace DIR): recording is on for the
// session's lifetime, and write() waits for every traced communication of the run's context to
// be recorded, then writes DIR/trace_rank<N>.json. Without a directory it does nothing.
#include <string>

#include "parallel/context.h"

namespace trident::launch {

class TraceSession {
 public:
  TraceSession(std::string dir, const parallel::ParallelContext& context);
  ~TraceSession();
  TraceSession(const TraceSession&) = delete;
  TraceSession& operator=(const TraceSession&) = delete;

  void write();

 private:
  std::string dir_;
  const parallel::ParallelContext& context_;
};

}  // namespace trident::launch
