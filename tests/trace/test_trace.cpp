// The trace writer: what it writes parses back as JSON, spans keep their nesting on every track,
// overlapping comm spans are spread over lanes, recording is thread-safe, and a disabled trace
// records nothing and writes no file.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <thread>
#include <vector>

#include "runtime/core/profiler.h"
#include "runtime/core/trace.h"

namespace trident {
namespace {

struct Span {
  std::string name;
  double start = 0;
  double end = 0;
};

struct Parsed {
  std::map<int, std::string> track_names;  // tid -> thread_name
  std::map<int, std::vector<Span>> spans;  // tid -> X events in file order
  int pid = -1;
};

Parsed parse(const std::string& text) {
  const nlohmann::json doc = nlohmann::json::parse(text);  // throws on invalid JSON
  Parsed out;
  for (const nlohmann::json& e : doc.at("traceEvents")) {
    out.pid = e.at("pid").get<int>();
    if (e.at("ph") == "M" && e.at("name") == "thread_name") {
      out.track_names[e.at("tid").get<int>()] = e.at("args").at("name").get<std::string>();
    } else if (e.at("ph") == "X") {
      const double ts = e.at("ts").get<double>();
      out.spans[e.at("tid").get<int>()].push_back(
          Span{e.at("name").get<std::string>(), ts, ts + e.at("dur").get<double>()});
    }
  }
  return out;
}

// On one track, any two spans are either disjoint or one contains the other, and a container
// comes before what it contains (what viewers need to draw the stack).
void expect_nested(const std::vector<Span>& spans, const std::string& track) {
  std::vector<Span> open;
  for (const Span& s : spans) {
    while (!open.empty() && open.back().end <= s.start) open.pop_back();
    if (!open.empty()) {
      EXPECT_LE(s.end, open.back().end + 1e-3)
          << "on '" << track << "', '" << s.name << "' overlaps '" << open.back().name
          << "' without nesting";
    }
    open.push_back(s);
  }
}

class TraceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    Trace::enable(false);
    Trace::reset();
  }
  void TearDown() override {
    Trace::enable(false);
    Trace::reset();
  }
};

TEST_F(TraceTest, DisabledRecordsNothingAndWritesNoFile) {
  {
    TRIDENT_TRACE_SCOPE("outer");
    TRIDENT_PROFILE_SCOPE("op");
  }
  EXPECT_TRUE(Trace::snapshot().empty());
  // No trace_dir: nothing written, not even into the working directory.
  std::filesystem::remove(Trace::file_name(0));
  EXPECT_EQ(Trace::write("", 0), "");
  EXPECT_FALSE(std::filesystem::exists(Trace::file_name(0)));
}

TEST_F(TraceTest, ScopesNestOnTheComputeTrackAndParseBack) {
  Trace::enable(true);
  {
    TRIDENT_TRACE_SCOPE("layer \"quoted\" \\ name");
    {
      TRIDENT_PROFILE_SCOPE("op a");
      std::this_thread::sleep_for(std::chrono::microseconds(200));
    }
    {
      TRIDENT_TRACE_SCOPE("phase");
      TRIDENT_PROFILE_SCOPE("op b");
      std::this_thread::sleep_for(std::chrono::microseconds(200));
    }
  }
  Trace::enable(false);
  {
    TRIDENT_TRACE_SCOPE("after disabling");
  }
  const Parsed p = parse(Trace::to_json(3));
  EXPECT_EQ(p.pid, 3);
  ASSERT_EQ(p.spans.size(), 1u);
  const auto& [tid, spans] = *p.spans.begin();
  EXPECT_EQ(p.track_names.at(tid), "compute");
  ASSERT_EQ(spans.size(), 4u);
  EXPECT_EQ(spans[0].name, "layer \"quoted\" \\ name");  // the container first
  EXPECT_EQ(spans[1].name, "op a");
  EXPECT_EQ(spans[2].name, "phase");
  EXPECT_EQ(spans[3].name, "op b");
  for (size_t i = 1; i < spans.size(); ++i) {
    EXPECT_GE(spans[i].start, spans[0].start);
    EXPECT_LE(spans[i].end, spans[0].end);
  }
  EXPECT_GE(spans[3].start, spans[2].start);
  EXPECT_LE(spans[3].end, spans[2].end);
  EXPECT_LE(spans[1].end, spans[2].start);
  expect_nested(spans, "compute");
}

TEST_F(TraceTest, OverlappingCommSpansGetTheirOwnLanes) {
  Trace::enable(true);
  const int64_t t = Trace::now_ns();
  // a [0,100) b [50,150) c [120,200) d [160,170): a and c share lane 1; b lane 2; d lane 2.
  Trace::record(TraceTrack::Comm, "a", t, t + 100'000, "\"bytes\":64");
  Trace::record(TraceTrack::Comm, "b", t + 50'000, t + 150'000);
  Trace::record(TraceTrack::Comm, "c", t + 120'000, t + 200'000);
  Trace::record(TraceTrack::Comm, "d", t + 160'000, t + 170'000);
  Trace::record(TraceTrack::CommWait, "wait a", t + 10'000, t + 100'000);
  const Parsed p = parse(Trace::to_json(0));
  std::map<std::string, std::string> lane_of;
  for (const auto& [tid, spans] : p.spans) {
    expect_nested(spans, p.track_names.at(tid));
    for (const Span& s : spans) lane_of[s.name] = p.track_names.at(tid);
  }
  EXPECT_EQ(lane_of.at("a"), "comm");
  EXPECT_EQ(lane_of.at("b"), "comm 2");
  EXPECT_EQ(lane_of.at("c"), "comm");
  EXPECT_EQ(lane_of.at("d"), "comm 2");
  EXPECT_EQ(lane_of.at("wait a"), "comm wait");
}

TEST_F(TraceTest, ThreadsRecordConcurrentlyOnTracksOfTheirOwn) {
  Trace::enable(true);
  constexpr int kThreads = 4, kSpans = 500;
  std::vector<std::thread> threads;
  for (int i = 0; i < kThreads; ++i) {
    threads.emplace_back([] {
      for (int j = 0; j < kSpans; ++j) {
        TRIDENT_TRACE_SCOPE("outer");
        TRIDENT_PROFILE_SCOPE("inner");
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  Trace::enable(false);
  EXPECT_EQ(Trace::snapshot().size(), static_cast<size_t>(kThreads * kSpans * 2));
  const Parsed p = parse(Trace::to_json(1));
  EXPECT_EQ(p.spans.size(), static_cast<size_t>(kThreads));
  for (const auto& [tid, spans] : p.spans) {
    EXPECT_EQ(spans.size(), static_cast<size_t>(kSpans * 2));
    expect_nested(spans, p.track_names.at(tid));
  }
}

TEST_F(TraceTest, KeepsAtMostMaxEventsAndCountsTheRest) {
  const int64_t saved = Trace::max_events();
  Trace::set_max_events(10);
  Trace::enable(true);
  for (int i = 0; i < 25; ++i) {
    TRIDENT_TRACE_SCOPE("span");
  }
  Trace::enable(false);
  Trace::set_max_events(saved);
  EXPECT_EQ(Trace::snapshot().size(), 10u);
  EXPECT_EQ(Trace::dropped(), 15);
  const nlohmann::json doc = nlohmann::json::parse(Trace::to_json(0));
  EXPECT_EQ(doc.at("otherData").at("dropped_events").get<int>(), 15);
}

TEST_F(TraceTest, WritesOneFilePerRankIntoTheDirectory) {
  const auto dir = std::filesystem::temp_directory_path() / "trident_trace_test" / "nested";
  std::filesystem::remove_all(dir.parent_path());
  Trace::enable(true);
  {
    TRIDENT_TRACE_SCOPE("x");
  }
  Trace::enable(false);
  const std::string path = Trace::write(dir.string(), 5);
  EXPECT_EQ(path, (dir / "trace_rank5.json").string());
  std::ifstream file(path);
  const std::string text((std::istreambuf_iterator<char>(file)), std::istreambuf_iterator<char>());
  EXPECT_EQ(parse(text).pid, 5);
  std::filesystem::remove_all(dir.parent_path());
}

}  // namespace
}  // namespace trident
