#pragma once
// DelayedLink: a Communicator decorator that makes every operation take as long as it would
// on a modelled network link, so compute/communication overlap can be measured and tested on
// a machine whose loopback is fast and free.
//
// An operation's Work completes no earlier than
//     finish = start + latency + wire_bytes / bandwidth
// where start is when the link is free (operations on one link queue behind each other's
// transfer time; latencies overlap) and wire_bytes is what the operation's algorithm sends
// per rank (n = group size, S = buffer bytes; see docs/comm.md):
//     all_reduce (ring)     2 (n-1)/n · S
//     reduce_scatter        (n-1)/n · S_input
//     all_gather            (n-1)/n · S_output
//     all_to_all_v          max(bytes sent to others, bytes received from others)
//     broadcast, send, recv S
//     barrier               0 (latency only)
// A group of one rank has no link: no delay. The real operation runs underneath and must
// also have finished. A thread waiting for an operation sleeps until its deadline itself, so
// the modelled time costs no CPU and no other thread: a timer thread waking the waiter was
// one more hand-over between threads, which on busy shared cores waits for a core.

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "parallel/comm/forwarding_communicator.h"

namespace trident::parallel::comm {

struct LinkModel {
  double latency_us = 0.0;
  double gbytes_per_s = 0.0;  // 10^9 bytes per second; 0 = unlimited
  bool is_free() const { return latency_us <= 0.0 && gbytes_per_s <= 0.0; }
  // Modelled duration of moving `wire_bytes` (no queueing).
  std::chrono::nanoseconds transfer_time(double wire_bytes) const;
};

// Which link a group uses: per axis ("ep", "dp", ...) if given, else the inter-node link for
// groups that span nodes and the intra-node link otherwise.
struct LinkConfig {
  LinkModel intra_node;
  LinkModel inter_node;
  std::map<std::string, LinkModel> per_axis;
  LinkModel for_group(const std::string& axis, bool spans_nodes) const;
};

// Bytes one rank puts on the wire for an operation (the table above).
double modelled_wire_bytes(const OpInfo& info, int group_size,
                           const std::vector<int64_t>& send_counts = {},
                           const std::vector<int64_t>& recv_counts = {}, int self_rank = 0);

class DelayedLink final : public ForwardingCommunicator {
 public:
  using Clock = std::chrono::steady_clock;

  DelayedLink(std::shared_ptr<Communicator> inner, const LinkModel& link);

  const LinkModel& link() const { return link_; }

 private:
  WorkHandle decorate(const std::function<WorkHandle()>& post, const Exchange& exchange) override;

  LinkModel link_;
  std::mutex mutex_;
  Clock::time_point link_free_at_{};
};

}  // namespace trident::parallel::comm
