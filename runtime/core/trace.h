#pragma once
// A Chrome / Perfetto trace of one process (one rank): complete ("X") events on named tracks,
// written as `{"traceEvents": [...]}` JSON that chrome://tracing and ui.perfetto.dev open.
//
// Tracks (one "thread" each in the viewer, all under pid = rank):
//   compute    what a thread computes: the TRIDENT_PROFILE_SCOPE scopes and TraceScope spans,
//              nested as they were opened. Each recording thread gets its own compute track
//              ("compute" for the first one, "compute (thread N)" for others, or
//              "compute (stream S)" for the thread of stream S).
//   comm       communication in flight, from post to observed completion. Operations overlap
//              in time, so they are spread over lanes "comm", "comm 2", ... when written (the
//              first lane free at the operation's start), which keeps every track nested.
//   comm wait  the time a thread spends blocked waiting for communication.
//
// Disabled (the default), Trace::enabled() is one relaxed atomic load and nothing is stored.
// Enabled, recording is thread-safe (one mutex) and keeps at most max_events() events; later
// ones are counted as dropped (the count is written in the file's metadata).
//
// Timestamps are steady_clock microseconds, which is one clock for every process on a host,
// so the files of several ranks line up when loaded together.
#include <atomic>
#include <chrono>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace trident {

enum class TraceTrack : uint8_t { Compute, Comm, CommWait };

const char* trace_track_name(TraceTrack track);  // "compute", "comm", "comm wait"

struct TraceEvent {
  std::string name;
  TraceTrack track = TraceTrack::Compute;
  int thread = 0;        // recording thread's index (0 = first thread that recorded)
  int64_t start_ns = 0;  // steady_clock
  int64_t end_ns = 0;
  std::string args_json;  // the body of the event's "args" object ("\"bytes\":64"), or empty
};

class Trace {
 public:
  using Clock = std::chrono::steady_clock;

  static void enable(bool on);
  static bool enabled() { return enabled_.load(std::memory_order_relaxed); }
  // Forgets every recorded event (and the dropped count).
  static void reset();
  static void set_max_events(int64_t max_events);
  static int64_t max_events();

  static int64_t now_ns() {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now().time_since_epoch())
        .count();
  }
  // Records one complete event (`thread` is filled in here). Callers check enabled() when the
  // span begins: a span begun while tracing was on is recorded even if it ends after.
  static void record(TraceTrack track, std::string name, int64_t start_ns, int64_t end_ns,
                     std::string args_json = {});
  static std::vector<TraceEvent> snapshot();
  static int64_t dropped();
  // Names the calling thread's tracks ("compute (stream ep.comm)" instead of
  // "compute (thread 2)"): the threads of streams call it.
  static void name_this_thread(const std::string& name);

  // The recorded events as Chrome trace JSON with pid = `rank`.
  static std::string to_json(int rank);
  // Writes to_json(rank) to `dir`/trace_rank<rank>.json (creating `dir`); returns the path.
  // An empty `dir` (tracing not asked for) writes nothing and returns "". Throws UserError
  // naming `dir` when it cannot be written.
  static std::string write(const std::string& dir, int rank);
  static std::string file_name(int rank);  // "trace_rank<rank>.json"

 private:
  static std::atomic<bool> enabled_;
};

// A compute-track span for the enclosing scope (for spans that are not op profile scopes,
// e.g. "moe.experts chunk 1"); costs one relaxed load while tracing is off.
class TraceScope {
 public:
  explicit TraceScope(const char* name, TraceTrack track = TraceTrack::Compute)
      : on_(Trace::enabled()), track_(track) {
    if (on_) {
      name_ = name;
      start_ns_ = Trace::now_ns();
    }
  }
  // For names built at run time; build them only when Trace::enabled().
  TraceScope(std::string name, TraceTrack track) : on_(Trace::enabled()), track_(track) {
    if (on_) {
      name_ = std::move(name);
      start_ns_ = Trace::now_ns();
    }
  }
  ~TraceScope() {
    if (on_) Trace::record(track_, std::move(name_), start_ns_, Trace::now_ns());
  }
  TraceScope(const TraceScope&) = delete;
  TraceScope& operator=(const TraceScope&) = delete;

 private:
  bool on_;
  TraceTrack track_;
  std::string name_;
  int64_t start_ns_ = 0;
};

// Minimal JSON string escaping for names and args ("\"", "\\", control characters).
std::string json_escape(const std::string& text);

}  // namespace trident

#define TRIDENT_TRACE_CONCAT_INNER(a, b) a##b
#define TRIDENT_TRACE_CONCAT(a, b) TRIDENT_TRACE_CONCAT_INNER(a, b)
#define TRIDENT_TRACE_SCOPE(name) \
  ::trident::TraceScope TRIDENT_TRACE_CONCAT(trident_trace_scope_, __LINE__)(name)
