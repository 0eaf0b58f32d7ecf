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

int64_t bytes_of(const Tensor& t) { return t.numel() * static_cast<int64_t>(dtype_size(t.dtype())); }

}  // namespace

TracingCommunicator::TracingCommunicator(std::shared_ptr<Communicator> inner, std::string label)
    : inner_(std::move(inner)), label_(std::move(label)) {
  TRIDENT_CHECK(inner_ != nullptr, "TracingCommunicator needs a communicator to wrap");
  if (label_.empty()) label_ = inner_->name();
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

WorkHandle TracingCommunicator::traced(WorkHandle inner, int64_t start_ns, int64_t bytes) {
  auto op = std::make_shared<InFlight>();
  const OpInfo& info = inner->info();
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

WorkHandle TracingCommunicator::all_reduce(const Tensor& tensor, ReduceOp op) {
  const int64_t start = Trace::now_ns();
  return traced(inner_->all_reduce(tensor, op), start, bytes_of(tensor));
}

WorkHandle TracingCommunicator::reduce_scatter(const Tensor& input, const Tensor& output,
                                               ReduceOp op) {
  const int64_t start = Trace::now_ns();
  return traced(inner_->reduce_scatter(input, output, op), start, bytes_of(input));
}

WorkHandle TracingCommunicator::all_gather(const Tensor& input, const Tensor& output) {
  const int64_t start = Trace::now_ns();
  return traced(inner_->all_gather(input, output), start, bytes_of(output));
}

WorkHandle TracingCommunicator::all_to_all_v(const Tensor& input,
                                             const std::vector<int64_t>& send_counts,
                                             const Tensor& output,
                                             const std::vector<int64_t>& recv_counts) {
  const int64_t start = Trace::now_ns();
  // The size is what leaves this rank for the others (the self block does not travel).
  int64_t sent = 0;
  for (size_t p = 0; p < send_counts.size(); ++p) {
    if (static_cast<int>(p) != rank()) sent += send_counts[p];
  }
  return traced(inner_->all_to_all_v(input, send_counts, output, recv_counts), start,
                sent * static_cast<int64_t>(dtype_size(input.dtype())));
}

WorkHandle TracingCommunicator::broadcast(const Tensor& tensor, int root) {
  const int64_t start = Trace::now_ns();
  return traced(inner_->broadcast(tensor, root), start, bytes_of(tensor));
}

WorkHandle TracingCommunicator::send(const Tensor& tensor, int peer, int tag) {
  const int64_t start = Trace::now_ns();
  return traced(inner_->send(tensor, peer, tag), start, bytes_of(tensor));
}

WorkHandle TracingCommunicator::recv(const Tensor& tensor, int peer, int tag) {
  const int64_t start = Trace::now_ns();
  return traced(inner_->recv(tensor, peer, tag), start, bytes_of(tensor));
}

WorkHandle TracingCommunicator::barrier() {
  const int64_t start = Trace::now_ns();
  return traced(inner_->barrier(), start, 0);
}

}  // namespace trident::parallel::comm
