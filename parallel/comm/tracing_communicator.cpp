#include "parallel/comm/tracing_communicator.h"

#include <atomic>
#include <cstdio>
#include <utility>

#include "runtime/core/error.h"
#include "runtime/core/trace.h"

namespace trident::parallel::comm {

std::string format_bytes(int64_t bytes) {
  char text[32];
  if (bytes < 1024) {
    std::snprintf(text, sizeof(text), "%lld B", static_cast<long long>(bytes));
  } else if (bytes < 1024 * 1024) {
    std::snprintf(text, sizeof(text), "%.1f KiB", static_cast<double>(bytes) / 1024.0);
  } else {
    std::snprintf(text, sizeof(text), "%.2f MiB", static_cast<double>(bytes) / (1024.0 * 1024.0));
  }
  return text;
}

struct TracingCommunicator::InFlight {
  WorkHandle inner;
  std::string name;
  std::string args;
  int64_t start_ns = 0;
  // First time anyone saw it complete (0 = not yet).
  std::atomic<int64_t> completed_ns{0};

  void observed_complete(int64_t now) {
    int64_t expected = 0;
    completed_ns.compare_exchange_strong(expected, now);
  }
};

namespace {

class TracedWork final : public Work {
 public:
  explicit TracedWork(std::shared_ptr<TracingCommunicator::InFlight> op) : op_(std::move(op)) {}

  bool test() override {
    const bool done = op_->inner->test();
    if (done) op_->observed_complete(Trace::now_ns());
    return done;
  }

  void wait(double timeout_seconds) override {
    const bool tracing = Trace::enabled();
    const int64_t start = Trace::now_ns();
    op_->inner->wait(timeout_seconds);
    const int64_t end = Trace::now_ns();
    op_->observed_complete(end);
    // Waits that did not block are not worth a span.
    if (tracing && end - start > 2000) {
      std::string name = "wait ";
      name.append(op_->name);
      Trace::record(TraceTrack::CommWait, std::move(name), start, end, op_->args);
    }
  }

  const OpInfo& info() const override { return op_->inner->info(); }

 private:
  std::shared_ptr<TracingCommunicator::InFlight> op_;
};

// The size in an event's name: the buffer the caller handed in (all_gather: the gathered
// output), or for all_to_all_v what leaves this rank for the others (the self block does not
// travel).
int64_t traced_bytes(const OpInfo& info, int size, int rank, const std::vector<int64_t>& sent) {
  int64_t elements = info.count;
  if (info.op == CommOp::AllGather) elements *= size;
  if (info.op == CommOp::AllToAllV) {
    elements = 0;
    for (size_t p = 0; p < sent.size(); ++p) {
      if (static_cast<int>(p) != rank) elements += sent[p];
    }
  }
  if (info.op == CommOp::Barrier) elements = 0;
  return elements * static_cast<int64_t>(dtype_size(info.dtype));
}

}  // namespace

TracingCommunicator::TracingCommunicator(std::shared_ptr<Communicator> inner, std::string label)
    : ForwardingCommunicator(std::move(inner)), label_(std::move(label)) {
  if (label_.empty()) label_ = name();
  watcher_ = std::thread([this] { watch(); });
}

TracingCommunicator::~TracingCommunicator() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stop_ = true;
  }
  cv_.notify_all();
  watcher_.join();
}

void TracingCommunicator::watch() {
  while (true) {
    std::shared_ptr<InFlight> op;
    {
      std::unique_lock<std::mutex> lock(mutex_);
      cv_.wait(lock, [this] { return stop_ || !pending_.empty(); });
      if (pending_.empty()) return;  // stopping with nothing in flight
      op = pending_.front();
      pending_.pop_front();
    }
    try {
      op->inner->wait();
      op->observed_complete(Trace::now_ns());
    } catch (const std::exception&) {
      // The caller's own wait() reports the failure; the trace shows the span up to now.
      op->observed_complete(Trace::now_ns());
    }
    Trace::record(TraceTrack::Comm, op->name, op->start_ns, op->completed_ns.load(), op->args);
    {
      std::lock_guard<std::mutex> lock(mutex_);
      ++recorded_;
    }
    drained_cv_.notify_all();
  }
}

void TracingCommunicator::drain() {
  std::unique_lock<std::mutex> lock(mutex_);
  drained_cv_.wait(lock, [this] { return recorded_ == posted_; });
}

WorkHandle TracingCommunicator::decorate(const std::function<WorkHandle()>& post,
                                         const Exchange& exchange) {
  const int64_t start_ns = Trace::now_ns();
  WorkHandle inner = post();
  const OpInfo& info = inner->info();
  const int64_t bytes = traced_bytes(info, size(), rank(), exchange.send_counts);
  auto op = std::make_shared<InFlight>();
  op->inner = std::move(inner);
  op->start_ns = start_ns;
  if (Trace::enabled()) {
    op->name.append(label_).append(" ").append(comm_op_name(info.op));
    if (info.op != CommOp::Barrier) op->name.append(" ").append(format_bytes(bytes));
    op->args.append("\"group\":\"")
        .append(json_escape(name()))
        .append("\",\"seq\":")
        .append(std::to_string(info.seq))
        .append(",\"bytes\":")
        .append(std::to_string(bytes))
        .append(",\"dtype\":\"")
        .append(dtype_name(info.dtype))
        .append("\"");
    if (info.peer >= 0) op->args.append(",\"peer\":").append(std::to_string(info.peer));
    {
      std::lock_guard<std::mutex> lock(mutex_);
      pending_.push_back(op);
      ++posted_;
    }
    cv_.notify_one();
  }
  return std::make_shared<TracedWork>(std::move(op));
}

}  // namespace trident::parallel::comm
