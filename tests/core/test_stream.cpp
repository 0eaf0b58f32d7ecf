// Streams run their queue in order on their own thread; events order work across streams and
// block only the waiting stream; errors are sticky and travel along waits; delay injection is
// reproducible from its seed.
#include <gtest/gtest.h>
#include <omp.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <future>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "runtime/core/error.h"
#include "runtime/core/stream.h"
#include "runtime/core/tensor.h"
#include "tests/support/expect_user_error.h"

namespace trident {
namespace {

using namespace std::chrono_literals;

// Holds a stream inside one item until the test lets it go.
class Gate {
 public:
  void open() { opened_.set_value(); }
  void pass() const { gate_.wait(); }

 private:
  std::promise<void> opened_;
  std::shared_future<void> gate_ = opened_.get_future().share();
};

TEST(Stream, RunsItsQueueInOrderOnItsOwnThreadWithoutBlockingTheCaller) {
  Stream stream("compute");
  Gate gate;
  std::vector<int> order;
  std::thread::id ran_on;
  stream.enqueue("held", [&] {
    ran_on = std::this_thread::get_id();
    gate.pass();
  });
  for (int i = 0; i < 5; ++i) stream.enqueue("item", [&order, i] { order.push_back(i); });
  EXPECT_FALSE(stream.query());  // held: enqueue returned while the first item still runs
  const Event before_open = stream.record();
  EXPECT_FALSE(before_open.query());
  gate.open();
  stream.synchronize();
  EXPECT_TRUE(stream.query());
  EXPECT_TRUE(before_open.query());
  EXPECT_EQ(order, (std::vector<int>{0, 1, 2, 3, 4}));
  EXPECT_NE(ran_on, std::this_thread::get_id());
}

TEST(Stream, WaitOrdersAcrossStreamsAndBlocksOnlyTheWaitingStream) {
  Stream producer("ep.comm"), consumer("compute"), bystander("copy");
  Gate gate;
  std::atomic<int> value{0};
  producer.enqueue("held", [&] { gate.pass(); });
  producer.enqueue("write", [&] { value = 42; });
  const Event written = producer.record();
  int seen = -1;
  consumer.wait(written);
  consumer.enqueue("read", [&] { seen = value.load(); });

  // The consumer is blocked on the event; a third stream and the caller are not.
  std::atomic<bool> bystander_ran{false};
  bystander.enqueue("independent", [&] { bystander_ran = true; });
  bystander.synchronize();
  EXPECT_TRUE(bystander_ran);
  std::this_thread::sleep_for(20ms);
  EXPECT_FALSE(consumer.query());
  EXPECT_EQ(seen, -1);

  gate.open();
  consumer.synchronize();
  EXPECT_EQ(seen, 42);
  EXPECT_TRUE(written.query());
}

TEST(Stream, EventSynchronizeBlocksTheCallerUntilThatPointOnly) {
  Stream stream("compute");
  Gate gate;
  int first = 0;
  stream.enqueue("first", [&] { first = 1; });
  const Event after_first = stream.record();
  stream.enqueue("held", [&] { gate.pass(); });
  after_first.synchronize();  // returns although the stream is still held
  EXPECT_EQ(first, 1);
  EXPECT_FALSE(stream.query());
  gate.open();
  stream.synchronize();
  EXPECT_TRUE(Event().query());  // never recorded: complete
  Event().synchronize();
}

TEST(Stream, ErrorsAreStickyAndTravelAlongWaits) {
  Stream failing("ep.comm"), waiting("compute");
  bool ran_after_failure = false;
  failing.enqueue("dispatch chunk 1", [] { TRIDENT_USER_FAIL("expert 9 is not on this rank"); });
  failing.enqueue("later", [&] { ran_after_failure = true; });
  const Event after = failing.record();
  waiting.wait(after);
  bool waiter_ran = false;
  waiting.enqueue("grouped GEMM", [&] { waiter_ran = true; });

  const std::string message = testing::error_message([&] { failing.synchronize(); });
  for (const char* words : {"stream 'ep.comm'", "dispatch chunk 1", "expert 9 is not on"}) {
    EXPECT_NE(message.find(words), std::string::npos) << "'" << words << "' not in " << message;
  }
  EXPECT_THROW(failing.synchronize(), UserError);  // still failed: the kind is kept
  EXPECT_THROW(after.synchronize(), UserError);
  const std::string downstream = testing::error_message([&] { waiting.synchronize(); });
  EXPECT_NE(downstream.find("dispatch chunk 1"), std::string::npos) << downstream;
  EXPECT_FALSE(ran_after_failure);
  EXPECT_FALSE(waiter_ran);
}

TEST(Stream, ForeignExceptionsBecomeInternalErrorsNamingTheItem) {
  Stream stream("copy");
  stream.enqueue("host copy", [] { throw std::runtime_error("short read"); });
  const std::string message = testing::error_message([&] { stream.synchronize(); });
  EXPECT_NE(message.find("stream 'copy', host copy: short read"), std::string::npos) << message;
}

// Memory a stream's work allocated is the device's (runtime/core/stream_origin.h): the host may
// touch it only after synchronizing with that work, even when the work has long finished.
TEST(StreamMemory, HostTouchesStreamMadeMemoryOnlyAfterSynchronizing) {
  Stream stream("compute");
  std::promise<Tensor> made;
  stream.enqueue("make rows", [&] { made.set_value(Tensor::full({4}, 2.0f)); });
  const Tensor rows = made.get_future().get();  // the item ran, but the host did not synchronize
  std::this_thread::sleep_for(5ms);
  const std::string message = testing::error_message([&] { (void)rows.item(0); });
  EXPECT_NE(message.find("stream 'compute' made in 'make rows'"), std::string::npos) << message;
  EXPECT_NE(message.find("before synchronizing"), std::string::npos) << message;
  EXPECT_THROW(rows.to_vector(), Error);
  // Another stream may use it (events order streams among themselves).
  Stream other("ep.comm");
  float seen = 0.0f;
  other.enqueue("read rows", [&] { seen = rows.item(0); });
  other.synchronize();
  EXPECT_EQ(seen, 2.0f);
  stream.synchronize();
  EXPECT_EQ(rows.item(0), 2.0f);
}

// An op run inside a queued item may split its loop over an OpenMP team (the expert GEMMs in
// the compute stream's items do): the team's workers act for the item, so they may touch what
// the item made, though their thread-local state does not know the item.
TEST(StreamMemory, AKernelsOpenMpWorkersActForTheItemThatOpenedTheTeam) {
  Stream stream("compute");
  std::atomic<int> failures{0}, touched{0};
  stream.enqueue("experts", [&] {
    Tensor rows = Tensor::zeros({64});
#pragma omp parallel num_threads(2)
    {
      try {
        rows.data<float>()[omp_get_thread_num()] = 1.0f;
        ++touched;
      } catch (const Error&) {
        ++failures;
      }
    }
  });
  stream.synchronize();
  EXPECT_EQ(failures.load(), 0);
  EXPECT_GE(touched.load(), 1);
}

TEST(StreamMemory, AnEventCoversTheItemsBeforeItOnly) {
  Stream stream("compute");
  Tensor first, second;
  stream.enqueue("first", [&] { first = Tensor::zeros({8}); });
  const Event after_first = stream.record();
  Gate gate;
  stream.enqueue("second", [&] {
    second = Tensor::zeros({8});
    gate.pass();
  });
  after_first.synchronize();
  EXPECT_EQ(first.item(3), 0.0f);
  EXPECT_FALSE(stream.query());  // "second" is held at the gate
  gate.open();
  while (!stream.query()) std::this_thread::sleep_for(1ms);  // a completed query synchronizes
  EXPECT_EQ(second.item(3), 0.0f);
  // What the host allocated stays the host's, whoever writes it.
  Tensor host = Tensor::zeros({2});
  stream.enqueue("write host", [&] { host.fill(1.0f); });
  stream.synchronize();
  EXPECT_EQ(host.item(1), 1.0f);
}

TEST(DelayInjection, SameSeedAndStreamGiveTheSameDelays) {
  const DelayInjection injection{7, 200};
  DelaySchedule a(injection, "ep.comm"), b(injection, "ep.comm"), other(injection, "compute");
  DelaySchedule reseeded(DelayInjection{8, 200}, "ep.comm");
  std::vector<int64_t> from_a, from_b, from_other, from_reseeded;
  for (int i = 0; i < 64; ++i) {
    from_a.push_back(a.next_us());
    from_b.push_back(b.next_us());
    from_other.push_back(other.next_us());
    from_reseeded.push_back(reseeded.next_us());
  }
  EXPECT_EQ(from_a, from_b);
  EXPECT_NE(from_a, from_other);
  EXPECT_NE(from_a, from_reseeded);
  for (const int64_t delay : from_a) {
    EXPECT_GE(delay, 0);
    EXPECT_LE(delay, 200);
  }
  DelaySchedule off(DelayInjection{7, 0}, "ep.comm");
  EXPECT_EQ(off.next_us(), 0);
}

TEST(DelayInjection, StreamsCreatedWhileOnDelayEveryItemAndStillKeepOrder) {
  const DelayInjection before = delay_injection();
  set_delay_injection({3, 2000});
  {
    Stream producer("ep.comm"), consumer("compute");
    EXPECT_TRUE(producer.injects_delays());
    std::vector<int> log;
    std::mutex log_mutex;
    const auto note = [&](int what) {
      const std::lock_guard<std::mutex> lock(log_mutex);
      log.push_back(what);
    };
    const auto start = std::chrono::steady_clock::now();
    for (int i = 0; i < 20; ++i) {
      producer.enqueue("produce", [&, i] { note(i); });
      consumer.wait(producer.record());
      consumer.enqueue("consume", [&, i] { note(100 + i); });
    }
    consumer.synchronize();
    // 60 producer items and 40 consumer items, each after a delay of up to 2 ms.
    EXPECT_GT(std::chrono::steady_clock::now() - start, 5ms);
    for (int i = 0; i < 20; ++i) {
      const auto produced = std::find(log.begin(), log.end(), i);
      const auto consumed = std::find(log.begin(), log.end(), 100 + i);
      ASSERT_NE(consumed, log.end());
      EXPECT_LT(produced, consumed) << "item " << i << " consumed before it was produced";
    }
  }
  set_delay_injection({7, 0});
  EXPECT_FALSE(Stream("compute").injects_delays());
  set_delay_injection(before);
}

TEST(DelayInjection, SettingsAreParsedOrRefusedNamingTheVariable) {
  const DelayInjection parsed = parse_delay_injection("7:200");
  EXPECT_EQ(parsed.seed, 7u);
  EXPECT_EQ(parsed.max_delay_us, 200);
  for (const char* bad : {"7", "7:", ":200", "7:-1", "x:200", "7:200us", "7:2:3"}) {
    SCOPED_TRACE(bad);
    const std::string message = testing::error_message([&] { parse_delay_injection(bad); });
    EXPECT_NE(message.find("TRIDENT_STREAM_DELAYS"), std::string::npos) << message;
    EXPECT_NE(message.find("SEED:MAX_US"), std::string::npos) << message;
  }
  EXPECT_THROW(set_delay_injection({1, -5}), UserError);
}

}  // namespace
}  // namespace trident
