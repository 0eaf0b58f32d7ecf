#include "parallel/comm/delayed_link.h"

#include <sys/prctl.h>

#include <algorithm>
#include <thread>

#include "runtime/core/error.h"

namespace trident::parallel::comm {

std::chrono::nanoseconds LinkModel::transfer_time(double wire_bytes) const {
  const double seconds = gbytes_per_s > 0.0 ? wire_bytes / (gbytes_per_s * 1e9) : 0.0;
  return std::chrono::nanoseconds(static_cast<int64_t>(seconds * 1e9));
}

LinkModel LinkConfig::for_group(const std::string& axis, bool spans_nodes) const {
  if (auto it = per_axis.find(axis); it != per_axis.end()) return it->second;
  return spans_nodes ? inter_node : intra_node;
}

double modelled_wire_bytes(const OpInfo& info, int group_size,
                           const std::vector<int64_t>& send_counts,
                           const std::vector<int64_t>& recv_counts, int self_rank) {
  if (group_size <= 1) return 0.0;
  const double n = group_size;
  const double element = static_cast<double>(dtype_size(info.dtype));
  const double bytes = static_cast<double>(info.count) * element;
  switch (info.op) {
    case CommOp::AllReduce: return 2.0 * (n - 1.0) / n * bytes;
    case CommOp::ReduceScatter: return (n - 1.0) / n * bytes;
    case CommOp::AllGather: return (n - 1.0) * bytes;  // count is the input block: S_out = n·block
    case CommOp::AllToAllV: {
      double sent = 0.0;
      double received = 0.0;
      for (size_t p = 0; p < send_counts.size(); ++p) {
        if (static_cast<int>(p) == self_rank) continue;
        sent += static_cast<double>(send_counts[p]) * element;
        received += static_cast<double>(recv_counts[p]) * element;
      }
      return std::max(sent, received);
    }
    case CommOp::Broadcast:
    case CommOp::Send:
    case CommOp::Recv: return bytes;
    case CommOp::Barrier: return 0.0;
  }
  return 0.0;
}

namespace {

// Modelled delays are a few hundred microseconds: the default 50 us timer slack would make
// each one longer by up to that much. Set once on each thread that sleeps on a deadline.
void tighten_timer_slack() {
  thread_local bool done = false;
  if (done) return;
  prctl(PR_SET_TIMERSLACK, 1000UL, 0UL, 0UL, 0UL);
  done = true;
}

class DelayedWork final : public Work {
 public:
  DelayedWork(WorkHandle inner, DelayedLink::Clock::time_point deadline, double default_timeout)
      : inner_(std::move(inner)), deadline_(deadline), default_timeout_(default_timeout) {}

  bool test() override {
    return DelayedLink::Clock::now() >= deadline_ && inner_->test();
  }

  void wait(double timeout_seconds) override {
    const double timeout = timeout_seconds < 0 ? default_timeout_ : timeout_seconds;
    const auto start = DelayedLink::Clock::now();
    const auto give_up = start + std::chrono::duration_cast<DelayedLink::Clock::duration>(
                                     std::chrono::duration<double>(timeout));
    if (deadline_ > give_up) {
      TRIDENT_FAIL_KIND(ErrorKind::Timeout, inner_->info().describe(),
                        ": the modelled link delay is longer than the ", timeout,
                        " s timeout; lower the delay or raise the timeout");
    }
    if (start < deadline_) {
      tighten_timer_slack();
      std::this_thread::sleep_until(deadline_);
    }
    const double left = std::chrono::duration<double>(give_up - DelayedLink::Clock::now()).count();
    inner_->wait(std::max(left, 0.0));
  }

  const OpInfo& info() const override { return inner_->info(); }

 private:
  WorkHandle inner_;
  DelayedLink::Clock::time_point deadline_;
  double default_timeout_;
};
}  // namespace

DelayedLink::DelayedLink(std::shared_ptr<Communicator> inner, const LinkModel& link)
    : ForwardingCommunicator(std::move(inner)), link_(link) {
  TRIDENT_USER_CHECK(link.latency_us >= 0 && link.gbytes_per_s >= 0,
                     "link latency (", link.latency_us, " us) and bandwidth (", link.gbytes_per_s,
                     " GB/s) must not be negative");
}

WorkHandle DelayedLink::decorate(const std::function<WorkHandle()>& post,
                                 const Exchange& exchange) {
  WorkHandle work = post();
  const double wire_bytes =
      modelled_wire_bytes(work->info(), size(), exchange.send_counts, exchange.recv_counts, rank());
  const auto now = Clock::now();
  Clock::time_point finish;
  if (size() <= 1) {
    finish = now;
  } else {
    std::lock_guard<std::mutex> lock(mutex_);
    const auto start = std::max(now, link_free_at_);
    const auto transfer = link_.transfer_time(wire_bytes);
    link_free_at_ = start + transfer;
    finish = start + transfer +
             std::chrono::nanoseconds(static_cast<int64_t>(link_.latency_us * 1e3));
  }
  return std::make_shared<DelayedWork>(std::move(work), finish, options().timeout_seconds);
}

}  // namespace trident::parallel::comm
