#include "runtime/core/trace.h"

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <sstream>

#include "runtime/core/error.h"

namespace trident {

std::atomic<bool> Trace::enabled_{false};

namespace {

struct TraceBuffer {
  std::mutex mutex;
  std::vector<TraceEvent> events;
  int64_t max_events = 4'000'000;
  int64_t dropped = 0;
};

TraceBuffer& buffer() {
  // Never destroyed: stream threads, which live until the process ends, record into it.
  static TraceBuffer* const instance = new TraceBuffer;
  return *instance;
}

// Small per-process thread indices, in the order threads first record.
std::atomic<int> g_next_thread{0};
int this_thread_index() {
  thread_local const int index = g_next_thread.fetch_add(1);
  return index;
}
// The main thread runs static initialisers, so it takes index 0 (the "compute" track) even when
// a stream's thread records first.
[[maybe_unused]] const int g_main_thread_index = this_thread_index();

// Track ids ("tid") in the file: compute tracks first, then comm wait, then the comm lanes.
constexpr int kComputeTid = 1;
constexpr int kCommWaitTid = 1000;
constexpr int kCommLaneTid = 2000;

// Thread index -> name_this_thread's name. Never destroyed: the device streams' threads live
// until the process ends (runtime/core/stream.h), so nothing may tear this down under them.
struct ThreadNames {
  std::mutex mutex;
  std::map<int, std::string> names;
};
ThreadNames& thread_names() {
  static ThreadNames* const names = new ThreadNames;
  return *names;
}

std::string thread_suffix(int thread) {
  {
    ThreadNames& t = thread_names();
    const std::lock_guard<std::mutex> lock(t.mutex);
    if (const auto it = t.names.find(thread); it != t.names.end()) {
      return " (" + it->second + ")";
    }
  }
  return thread == 0 ? std::string() : " (thread " + std::to_string(thread) + ")";
}

void append_us(std::string& out, int64_t ns) {
  char text[32];
  std::snprintf(text, sizeof(text), "%.3f", static_cast<double>(ns) / 1e3);
  out += text;
}

void append_metadata(std::string& out, int rank, int tid, const char* what,
                     const std::string& args) {
  out += "{\"ph\":\"M\",\"pid\":" + std::to_string(rank);
  if (tid >= 0) out += ",\"tid\":" + std::to_string(tid);
  out += ",\"name\":\"";
  out += what;
  out += "\",\"args\":{" + args + "}},\n";
}

void append_thread(std::string& out, int rank, int tid, const std::string& name) {
  append_metadata(out, rank, tid, "thread_name", "\"name\":\"" + json_escape(name) + "\"");
  append_metadata(out, rank, tid, "thread_sort_index", "\"sort_index\":" + std::to_string(tid));
}

}  // namespace

const char* trace_track_name(TraceTrack track) {
  switch (track) {
    case TraceTrack::Compute: return "compute";
    case TraceTrack::Comm: return "comm";
    case TraceTrack::CommWait: return "comm wait";
  }
  return "?";
}

std::string json_escape(const std::string& text) {
  std::string out;
  out.reserve(text.size());
  for (const char c : text) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\t': out += "\\t"; break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          char code[8];
          std::snprintf(code, sizeof(code), "\\u%04x", static_cast<unsigned>(c));
          out += code;
        } else {
          out += c;
        }
    }
  }
  return out;
}

void Trace::name_this_thread(const std::string& name) {
  const int index = this_thread_index();
  ThreadNames& t = thread_names();
  const std::lock_guard<std::mutex> lock(t.mutex);
  t.names[index] = name;
}

void Trace::enable(bool on) { enabled_.store(on); }

void Trace::reset() {
  TraceBuffer& b = buffer();
  std::lock_guard<std::mutex> lock(b.mutex);
  b.events.clear();
  b.dropped = 0;
}

void Trace::set_max_events(int64_t max_events) {
  TraceBuffer& b = buffer();
  std::lock_guard<std::mutex> lock(b.mutex);
  b.max_events = std::max<int64_t>(0, max_events);
}

int64_t Trace::max_events() {
  TraceBuffer& b = buffer();
  std::lock_guard<std::mutex> lock(b.mutex);
  return b.max_events;
}

void Trace::record(TraceTrack track, std::string name, int64_t start_ns, int64_t end_ns,
                   std::string args_json) {
  const int thread = this_thread_index();
  TraceBuffer& b = buffer();
  std::lock_guard<std::mutex> lock(b.mutex);
  if (static_cast<int64_t>(b.events.size()) >= b.max_events) {
    ++b.dropped;
    return;
  }
  b.events.push_back(TraceEvent{std::move(name), track, thread, start_ns,
                                std::max(start_ns, end_ns), std::move(args_json)});
}

std::vector<TraceEvent> Trace::snapshot() {
  TraceBuffer& b = buffer();
  std::lock_guard<std::mutex> lock(b.mutex);
  return b.events;
}

int64_t Trace::dropped() {
  TraceBuffer& b = buffer();
  std::lock_guard<std::mutex> lock(b.mutex);
  return b.dropped;
}

std::string Trace::to_json(int rank) {
  std::vector<TraceEvent> events = snapshot();
  const int64_t lost = dropped();
  // Viewers nest "X" events of one track by time; an enclosing span recorded after its
  // children (scopes close inside out) must come first, so sort by start, longer first.
  std::stable_sort(events.begin(), events.end(), [](const TraceEvent& a, const TraceEvent& b) {
    if (a.start_ns != b.start_ns) return a.start_ns < b.start_ns;
    return a.end_ns > b.end_ns;
  });
  // Comm operations overlap each other: give each the first lane free at its start.
  std::vector<int64_t> lane_free_at;
  std::vector<int> tid(events.size());
  std::vector<int> compute_threads, wait_threads;
  for (size_t i = 0; i < events.size(); ++i) {
    const TraceEvent& e = events[i];
    switch (e.track) {
      case TraceTrack::Compute:
        tid[i] = kComputeTid + e.thread;
        compute_threads.push_back(e.thread);
        break;
      case TraceTrack::CommWait:
        tid[i] = kCommWaitTid + e.thread;
        wait_threads.push_back(e.thread);
        break;
      case TraceTrack::Comm: {
        size_t lane = 0;
        while (lane < lane_free_at.size() && lane_free_at[lane] > e.start_ns) ++lane;
        if (lane == lane_free_at.size()) lane_free_at.push_back(0);
        lane_free_at[lane] = e.end_ns;
        tid[i] = kCommLaneTid + static_cast<int>(lane);
        break;
      }
    }
  }
  const auto unique = [](std::vector<int>& v) {
    std::sort(v.begin(), v.end());
    v.erase(std::unique(v.begin(), v.end()), v.end());
  };
  unique(compute_threads);
  unique(wait_threads);

  std::string out = "{\"displayTimeUnit\":\"ms\",\"otherData\":{\"rank\":" +
                    std::to_string(rank) + ",\"dropped_events\":" + std::to_string(lost) +
                    "},\n\"traceEvents\":[\n";
  append_metadata(out, rank, -1, "process_name",
                  "\"name\":\"rank " + std::to_string(rank) + "\"");
  append_metadata(out, rank, -1, "process_sort_index", "\"sort_index\":" + std::to_string(rank));
  for (const int t : compute_threads) {
    append_thread(out, rank, kComputeTid + t, "compute" + thread_suffix(t));
  }
  for (const int t : wait_threads) {
    append_thread(out, rank, kCommWaitTid + t, "comm wait" + thread_suffix(t));
  }
  for (size_t lane = 0; lane < lane_free_at.size(); ++lane) {
    append_thread(out, rank, kCommLaneTid + static_cast<int>(lane),
                  lane == 0 ? std::string("comm") : "comm " + std::to_string(lane + 1));
  }
  for (size_t i = 0; i < events.size(); ++i) {
    const TraceEvent& e = events[i];
    out += "{\"ph\":\"X\",\"pid\":" + std::to_string(rank) + ",\"tid\":" + std::to_string(tid[i]);
    out += ",\"cat\":\"";
    out += trace_track_name(e.track);
    out += "\",\"name\":\"" + json_escape(e.name) + "\",\"ts\":";
    append_us(out, e.start_ns);
    out += ",\"dur\":";
    append_us(out, e.end_ns - e.start_ns);
    if (!e.args_json.empty()) out += ",\"args\":{" + e.args_json + "}";
    out += "},\n";
  }
  // Every event line ends with ",\n"; JSON wants no comma after the last one.
  out.resize(out.size() - 2);
  out += "\n]}\n";
  return out;
}

std::string Trace::file_name(int rank) { return "trace_rank" + std::to_string(rank) + ".json"; }

std::string Trace::write(const std::string& dir, int rank) {
  if (dir.empty()) return {};
  std::error_code error;
  std::filesystem::create_directories(dir, error);
  TRIDENT_USER_CHECK(!error, "trace directory '", dir, "' cannot be created: ", error.message(),
                     " (logging.trace_dir / --trace)");
  const std::string path = (std::filesystem::path(dir) / file_name(rank)).string();
  const std::string text = to_json(rank);
  std::ofstream file(path, std::ios::binary | std::ios::trunc);
  TRIDENT_USER_CHECK(file.good(), "trace file '", path,
                     "' cannot be written (logging.trace_dir / --trace)");
  file << text;
  file.close();
  TRIDENT_USER_CHECK(!file.fail(), "writing trace file '", path, "' failed (disk full?)");
  return path;
}

}  // namespace trident
