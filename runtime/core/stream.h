#pragma once
// Streams and events: the execution model of the device runtime (docs/streams.md).
//
// A Stream is an ordered queue of work. enqueue() returns at once; the work runs later, in
// queue order, on the stream's own thread (the CPU backend's "device"). record() returns an
// Event: a point in the queue, complete once everything queued before it has run. wait(event)
// makes the stream's later work start only after the event completed; it blocks that stream,
// never the caller. synchronize() blocks the caller until the queue is empty. These are the
// semantics of CUDA streams and events, so code ordered correctly here is ordered correctly on
// a GPU, and code that forgets a wait is as wrong here as there.
//
// Errors are sticky, as on a GPU: when a work item throws, the stream skips the rest of its
// queue, events recorded after the failure carry the error, a stream that waits on such an
// event fails too, and the next synchronize() (of either) rethrows it naming the stream and the
// item that failed.
//
// Race hunting: with delay injection on (set_delay_injection, or TRIDENT_STREAM_DELAYS), every
// stream sleeps a random time before each item, drawn from a generator seeded by the seed and
// the stream's name, so a missing wait between streams turns into a wrong result instead of a
// lucky one, and a run can be repeated with the same delays.
#include <cstdint>
#include <functional>
#include <initializer_list>
#include <memory>
#include <string>
#include <vector>

#include "runtime/core/rng.h"
#include "runtime/core/tensor.h"

namespace trident {

namespace detail {
struct EventState;
struct StreamState;
}  // namespace detail

// A point in one stream's queue. Copies refer to the same point. A default-constructed event
// is complete (like a CUDA event never recorded).
class Event {
 public:
  Event() = default;
  // Non-blocking: whether everything queued before this point has run (or failed).
  bool query() const;
  // Blocks the caller until the event completed; rethrows the error it carries, if any.
  void synchronize() const;

 private:
  friend class Stream;
  explicit Event(std::shared_ptr<detail::EventState> state) : state_(std::move(state)) {}
  std::shared_ptr<detail::EventState> state_;
};

class Stream {
 public:
  // name says what the stream is for ("compute", "ep.comm"): error messages and the delay
  // generator's seed use it.
  explicit Stream(std::string name);
  // Waits for the queued work to finish (errors are logged, not thrown), then stops the thread.
  ~Stream();
  Stream(const Stream&) = delete;
  Stream& operator=(const Stream&) = delete;

  const std::string& name() const;

  // Queues work; `what` names it in errors ("all_to_all_v dispatch chunk 2").
  void enqueue(std::string what, std::function<void()> work);
  // An event that completes once everything queued so far has run.
  Event record();
  // Work queued after this starts only once `event` completed. The caller does not block.
  void wait(const Event& event);
  // Non-blocking: whether the queue is empty and nothing is running.
  bool query() const;
  // Whether this stream sleeps before each item (delay injection was on when it was made).
  bool injects_delays() const;
  // Blocks the caller until everything queued so far has run; rethrows the stream's first
  // error (and keeps it: the stream stays failed).
  void synchronize();

 private:
  std::unique_ptr<detail::StreamState> state_;
};

// The streams of this rank's device, made on first use (with the delay injection in force
// then) and kept for the life of the process. compute: GEMMs and element-wise work; ep_comm:
// the expert dispatcher's all-to-alls, serial as collectives on one NCCL stream are; dp_comm:
// the data-parallel gradient reductions (parallel/dp/grad_reducer.h); pp_comm: the pipeline's
// sends and receives of activations and gradients (parallel/pp/executor.h).
struct DeviceStreams {
  Stream compute{"compute"};
  Stream ep_comm{"ep.comm"};
  Stream dp_comm{"dp.comm"};
  Stream pp_comm{"pp.comm"};
  // Race hunting is on for these streams: buffers they fill should start poisoned.
  bool hunting_races() const { return compute.injects_delays(); }
};
DeviceStreams& device_streams();

// Storage that a stream's work will fill. While the device streams hunt races it starts as NaN
// (f32), so a reader that misses its wait reads NaN rather than stale values that happen to be
// right.
Tensor empty_stream_target(const Shape& shape, DType dtype = DType::F32,
                           Device device = Device::CPU);

// Keeps a host function from leaving while work it queued still refers to its buffers:
// synchronize() on the normal path (rethrowing a stream's error), the destructor on an early
// exit by exception (errors swallowed: the host's own exception is already on its way).
class StreamFence {
 public:
  explicit StreamFence(std::initializer_list<Stream*> streams) : streams_(streams) {}
  ~StreamFence();
  StreamFence(const StreamFence&) = delete;
  StreamFence& operator=(const StreamFence&) = delete;
  void synchronize();

 private:
  std::vector<Stream*> streams_;
  bool synchronized_ = false;
};

// Seeded random delays before every queued item of every stream created afterwards: each delay
// is uniform in [0, max_delay_us] microseconds. max_delay_us = 0 turns the mode off.
struct DelayInjection {
  uint64_t seed = 0;
  int64_t max_delay_us = 0;
  bool enabled() const { return max_delay_us > 0; }
};
void set_delay_injection(const DelayInjection& injection);
// What streams created now use: set_delay_injection's value, else TRIDENT_STREAM_DELAYS
// ("SEED:MAX_US", e.g. "7:200"), else off. A malformed variable is a UserError naming it.
DelayInjection delay_injection();
// "SEED:MAX_US" -> the injection; anything else is a UserError naming TRIDENT_STREAM_DELAYS.
DelayInjection parse_delay_injection(const std::string& value);

// The delays one stream draws, in order: a pure function of (seed, stream name), so a failing
// run can be replayed with the same delays.
class DelaySchedule {
 public:
  DelaySchedule(const DelayInjection& injection, const std::string& stream_name);
  // Microseconds to sleep before the next item (0 when off).
  int64_t next_us();
  bool enabled() const { return max_us_ > 0; }

 private:
  CounterRng rng_;
  uint64_t drawn_ = 0;
  int64_t max_us_;
};

}  // namespace trident
