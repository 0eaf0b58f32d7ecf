#pragma once
// TracingCommunicator: a Communicator decorator that puts every operation on the trace's comm
// track (runtime/core/trace.h), from the moment it is posted to the moment it completes, named
// by group, op and size ("ep all_to_all_v 256.0 KiB"), and every blocking wait() on the
// "comm wait" track. Wrap the outermost communicator (e.g. around a DelayedLink) so the span is
// what the caller experiences.
//
// Completion is observed by a watcher thread that waits for the operations in the order they
// were posted (it sleeps inside wait(), costing no CPU), or earlier by the caller's own wait()
// or test(); an operation that completes before an older one is reported when the older one
// completes. Operations are recorded only while Trace::enabled(); with tracing off the
// decorator is not meant to be installed at all.
#include <condition_variable>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "parallel/comm/forwarding_communicator.h"

namespace trident::parallel::comm {

class TracingCommunicator final : public ForwardingCommunicator {
 public:
  // `label` prefixes the event names (e.g. the mesh axis, "ep"); empty uses name().
  explicit TracingCommunicator(std::shared_ptr<Communicator> inner, std::string label = {});
  ~TracingCommunicator() override;
  TracingCommunicator(const TracingCommunicator&) = delete;
  TracingCommunicator& operator=(const TracingCommunicator&) = delete;

  // Blocks until every traced operation posted so far has been recorded (call after waiting
  // for them, before writing the trace).
  void drain();

  struct InFlight;  // one posted operation, shared by its Work and the watcher

 private:
  WorkHandle decorate(const std::function<WorkHandle()>& post, const Exchange& exchange) override;
  void watch();

  std::string label_;
  std::mutex mutex_;
  std::condition_variable cv_;
  std::condition_variable drained_cv_;
  std::deque<std::shared_ptr<InFlight>> pending_;
  int64_t posted_ = 0;
  int64_t recorded_ = 0;
  bool stop_ = false;
  std::thread watcher_;
};

// "512 B", "3.0 KiB", "1.50 MiB": sizes in event names.
std::string format_bytes(int64_t bytes);

}  // namespace trident::parallel::comm
