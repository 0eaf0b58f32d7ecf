#include "runtime/core/stream.h"

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <deque>
#include <limits>
#include <mutex>
#include <optional>
#include <thread>

#include "runtime/core/device_access.h"
#include "runtime/core/error.h"
#include "runtime/core/logging.h"
#include "runtime/core/stream_origin.h"
#include "runtime/core/trace.h"

namespace trident {
namespace detail {

// A failure carried from the item that threw to every synchronize() and waiting stream.
struct StreamFailure {
  ErrorKind kind = ErrorKind::Internal;
  std::string message;
  [[noreturn]] void raise() const { throw_error(kind, __FILE__, __LINE__, message); }
};

StreamFailure failure_of(std::exception_ptr thrown, const std::string& where) {
  try {
    std::rethrow_exception(thrown);
  } catch (const Error& e) {
    return {e.kind(), where + ": " + e.detail()};
  } catch (const std::exception& e) {
    return {ErrorKind::Internal, where + ": " + e.what()};
  } catch (...) {
    return {ErrorKind::Internal, where + ": an exception that is not a std::exception"};
  }
}

// counter := max(counter, value)
void raise_to(std::atomic<uint64_t>& counter, uint64_t value) {
  uint64_t seen = counter.load(std::memory_order_relaxed);
  while (seen < value && !counter.compare_exchange_weak(seen, value, std::memory_order_release,
                                                        std::memory_order_relaxed)) {
  }
}

struct EventState {
  mutable std::mutex mutex;
  std::condition_variable done_cv;
  bool done = false;
  std::optional<StreamFailure> failure;
  // The recording stream's host-synchronized count, and the items queued before this event:
  // a host that synchronizes the event may read what they made.
  std::shared_ptr<std::atomic<uint64_t>> host_synced;
  uint64_t items_before = 0;

  void host_synchronized() const { raise_to(*host_synced, items_before); }

  void complete(const std::optional<StreamFailure>& with) {
    {
      const std::lock_guard<std::mutex> lock(mutex);
      done = true;
      failure = with;
    }
    done_cv.notify_all();
  }
  // Blocks until done; returns the failure it carries.
  std::optional<StreamFailure> await() {
    std::unique_lock<std::mutex> lock(mutex);
    done_cv.wait(lock, [&] { return done; });
    return failure;
  }
};

struct StreamItem {
  enum class Kind { Work, Record, Wait } kind = Kind::Work;
  std::string what;
  std::function<void()> work;                  // Work
  std::shared_ptr<EventState> event;           // Record: completes it; Wait: awaits it
  std::shared_ptr<const StreamOrigin> origin;  // Work: what storage it allocates records
};

struct StreamState {
  std::string name;
  DelaySchedule delays;
  std::mutex mutex;
  std::condition_variable changed;  // an item was queued, finished, or stop was asked
  std::deque<StreamItem> queue;
  bool running_item = false;
  bool stop = false;
  std::optional<StreamFailure> failure;  // sticky: the first item that failed
  std::thread thread;
  uint64_t work_items = 0;  // work items queued so far
  // Of those, how many the host has synchronized with (stream_origin.h).
  std::shared_ptr<std::atomic<uint64_t>> host_synced = std::make_shared<std::atomic<uint64_t>>(0);

  explicit StreamState(std::string stream_name)
      : name(std::move(stream_name)), delays(delay_injection(), name) {}

  void run();
  void execute(StreamItem& item);
};

void StreamState::execute(StreamItem& item) {
  if (const int64_t delay = delays.next_us(); delay > 0) {
    std::this_thread::sleep_for(std::chrono::microseconds(delay));
  }
  std::optional<StreamFailure> failed;
  {
    const std::lock_guard<std::mutex> lock(mutex);
    failed = failure;
  }
  switch (item.kind) {
    case StreamItem::Kind::Record:
      item.event->complete(failed);
      return;
    case StreamItem::Kind::Wait:
      if (failed) return;
      if (std::optional<StreamFailure> upstream = item.event->await()) {
        const std::lock_guard<std::mutex> lock(mutex);
        if (!failure) failure = upstream;
      }
      return;
    case StreamItem::Kind::Work:
      if (failed) return;  // sticky: what follows a failure does not run
      try {
        set_current_stream_item(item.origin);
        item.work();
        set_current_stream_item(nullptr);
      } catch (...) {
        set_current_stream_item(nullptr);
        const StreamFailure thrown =
            failure_of(std::current_exception(), "stream '" + name + "', " + item.what);
        const std::lock_guard<std::mutex> lock(mutex);
        if (!failure) failure = thrown;
      }
      return;
  }
}

void StreamState::run() {
  for (;;) {
    StreamItem item;
    {
      std::unique_lock<std::mutex> lock(mutex);
      changed.wait(lock, [&] { return stop || !queue.empty(); });
      if (queue.empty()) return;  // stop asked and nothing left
      item = std::move(queue.front());
      queue.pop_front();
      running_item = true;
    }
    execute(item);
    {
      const std::lock_guard<std::mutex> lock(mutex);
      running_item = false;
    }
    changed.notify_all();
  }
}

}  // namespace detail

bool Event::query() const {
  if (!state_) return true;
  bool done = false;
  {
    const std::lock_guard<std::mutex> lock(state_->mutex);
    done = state_->done;
  }
  if (done) state_->host_synchronized();
  return done;
}

void Event::synchronize() const {
  if (!state_) return;
  const std::optional<detail::StreamFailure> failure = state_->await();
  if (failure) failure->raise();
  state_->host_synchronized();
}

Stream::Stream(std::string name) : state_(std::make_unique<detail::StreamState>(std::move(name))) {
  state_->thread = std::thread([state = state_.get()] {
    Trace::name_this_thread("stream " + state->name);
    state->run();
  });
}

Stream::~Stream() {
  {
    const std::lock_guard<std::mutex> lock(state_->mutex);
    state_->stop = true;
  }
  state_->changed.notify_all();
  state_->thread.join();  // runs what is queued first
  detail::raise_to(*state_->host_synced, state_->work_items);
  if (state_->failure) {
    TLOG_WARN("stream '", state_->name,
              "' was destroyed with an unreported error: ", state_->failure->message);
  }
}

const std::string& Stream::name() const { return state_->name; }

void Stream::enqueue(std::string what, std::function<void()> work) {
  {
    const std::lock_guard<std::mutex> lock(state_->mutex);
    auto origin = std::make_shared<StreamOrigin>(
        StreamOrigin{state_->host_synced, ++state_->work_items, state_->name, what});
    state_->queue.push_back({detail::StreamItem::Kind::Work, std::move(what), std::move(work),
                             nullptr, std::move(origin)});
  }
  state_->changed.notify_all();
}

Event Stream::record() {
  auto event = std::make_shared<detail::EventState>();
  event->host_synced = state_->host_synced;
  {
    const std::lock_guard<std::mutex> lock(state_->mutex);
    event->items_before = state_->work_items;
    state_->queue.push_back({detail::StreamItem::Kind::Record, "record", nullptr, event, nullptr});
  }
  state_->changed.notify_all();
  return Event(event);
}

void Stream::wait(const Event& event) {
  if (!event.state_) return;  // never recorded: nothing to wait for
  {
    const std::lock_guard<std::mutex> lock(state_->mutex);
    state_->queue.push_back(
        {detail::StreamItem::Kind::Wait, "wait", nullptr, event.state_, nullptr});
  }
  state_->changed.notify_all();
}

bool Stream::query() const {
  const std::lock_guard<std::mutex> lock(state_->mutex);
  const bool idle = state_->queue.empty() && !state_->running_item;
  if (idle) detail::raise_to(*state_->host_synced, state_->work_items);
  return idle;
}

bool Stream::injects_delays() const { return state_->delays.enabled(); }

void Stream::synchronize() {
  std::optional<detail::StreamFailure> failure;
  {
    std::unique_lock<std::mutex> lock(state_->mutex);
    state_->changed.wait(lock, [&] { return state_->queue.empty() && !state_->running_item; });
    failure = state_->failure;
    if (!failure) detail::raise_to(*state_->host_synced, state_->work_items);
  }
  if (failure) failure->raise();
}

DeviceStreams& device_streams() {
  // Never destroyed: objects with static lifetime (a cached trainer in a test binary, say) may
  // still synchronize these streams from their destructors after main returns. Their threads
  // sit idle in their queues' wait until the process ends.
  static DeviceStreams* const streams = new DeviceStreams;
  return *streams;
}

Tensor empty_stream_target(const Shape& shape, DType dtype, Device device) {
  Tensor buffer = Tensor::empty(shape, dtype, device);
  if (device_streams().hunting_races() && dtype == DType::F32 && in_host_ram(device)) {
    const DeviceCode poison;  // the CPU backend's device memory too
    buffer.fill(std::numeric_limits<float>::quiet_NaN());
  }
  return buffer;
}

StreamFence::~StreamFence() {
  if (synchronized_) return;
  for (Stream* stream : streams_) {
    try {
      stream->synchronize();
    } catch (const std::exception&) {  // the host's own exception is already on its way
    }
  }
}

void StreamFence::synchronize() {
  for (Stream* stream : streams_) stream->synchronize();
  synchronized_ = true;
}

// ---- delay injection ----

namespace {

std::mutex g_injection_mutex;
std::optional<DelayInjection> g_injection;  // set_delay_injection's value, if called

}  // namespace

DelayInjection parse_delay_injection(const std::string& value) {
  const size_t colon = value.find(':');
  DelayInjection injection;
  try {
    TRIDENT_USER_CHECK(colon != std::string::npos, "");
    size_t used = 0;
    injection.seed = std::stoull(value.substr(0, colon), &used);
    TRIDENT_USER_CHECK(used == colon, "");
    const std::string max = value.substr(colon + 1);
    injection.max_delay_us = std::stoll(max, &used);
    TRIDENT_USER_CHECK(used == max.size() && injection.max_delay_us >= 0, "");
  } catch (const std::exception&) {
    TRIDENT_USER_FAIL("TRIDENT_STREAM_DELAYS='", value,
                      "' is not SEED:MAX_US (two non-negative integers, e.g. 7:200)");
  }
  return injection;
}

void set_delay_injection(const DelayInjection& injection) {
  TRIDENT_USER_CHECK(injection.max_delay_us >= 0, "stream delay injection: max_delay_us must be ",
                     ">= 0 (0 = off), got ", injection.max_delay_us);
  const std::lock_guard<std::mutex> lock(g_injection_mutex);
  g_injection = injection;
}

DelayInjection delay_injection() {
  {
    const std::lock_guard<std::mutex> lock(g_injection_mutex);
    if (g_injection) return *g_injection;
  }
  const char* text = std::getenv("TRIDENT_STREAM_DELAYS");
  return text == nullptr || *text == '\0' ? DelayInjection{} : parse_delay_injection(text);
}

DelaySchedule::DelaySchedule(const DelayInjection& injection, const std::string& stream_name)
    : rng_(injection.seed, stream_id(stream_name)), max_us_(injection.max_delay_us) {}

int64_t DelaySchedule::next_us() {
  if (max_us_ <= 0) return 0;
  const uint32_t bits = rng_.bits(drawn_++);
  return static_cast<int64_t>(bits % static_cast<uint64_t>(max_us_ + 1));
}

}  // namespace trident
