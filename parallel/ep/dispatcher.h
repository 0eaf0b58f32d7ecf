#pragma once
// The expert-parallel dispatcher: moves routed token rows to the ranks that hold their experts
// and brings the expert outputs back, over one comm::Communicator (the EP group, possibly wrapped
// in a comm::DelayedLink).
//
//   plan      routing -> DispatchLayout: the send side is local arithmetic; the per-rank,
//             per-expert counts of every chunk are then exchanged in one small all_to_all_v
//             (waited for), so every rank knows how many rows it will receive before any data
//             moves.
//   dispatch  rows in send order -> posted all_to_all_v -> PendingRows; wait() gives the
//             received rows in expert order (ready for the grouped GEMM).
//   combine   rows in expert order -> posted all_to_all_v back -> PendingRows; wait() gives the
//             rows in the sender's send order (to be un-permuted with the gate weights).
//
// dispatch and combine return at once; the caller computes while the rows are on the wire and
// waits when it needs them. Every rank must issue the same sequence of plan / dispatch / combine
// calls (they are collectives on the group), whatever its counts: zero rows are fine, and so is
// every token of every rank going to one expert. The backward pass uses the same two calls:
// output gradients travel like a dispatch, input gradients like a combine.
#include <cstdint>
#include <memory>

#include "parallel/comm/communicator.h"
#include "parallel/ep/dispatch_layout.h"

namespace trident::parallel::ep {

struct DispatcherOptions {
  int64_t experts = 0;           // E: global routed experts, a multiple of the group size
  int64_t chunks = 1;            // parallel.a2a_chunks: token chunks dispatched in turn
  double capacity_factor = 0.0;  // parallel.capacity_factor: 0 = dropless, else ≥ 1
  // Throws UserError naming the parallel.* field at fault.
  void validate(int group_size) const;
};

// Rows on their way; wait() blocks until they arrived and returns them in the documented order.
class PendingRows {
 public:
  PendingRows() = default;
  bool valid() const { return work_ != nullptr; }
  // Non-blocking: whether the transfer finished.
  bool ready() const;
  // Blocks (communicator's timeout), then returns the rows. Call once.
  Tensor wait();

 private:
  friend class Dispatcher;
  comm::WorkHandle work_;
  Tensor received_;                    // as the all_to_all_v delivered it
  Tensor out_;                         // where wait() puts the rows (undefined: allocate)
  std::vector<int64_t> block_counts_;  // reorder after arrival (dispatch only); empty = none
  int64_t ranks_ = 1;
  int64_t local_experts_ = 1;
};

class Dispatcher {
 public:
  Dispatcher(std::shared_ptr<comm::Communicator> group, DispatcherOptions options);

  int rank() const { return group_->rank(); }
  int size() const { return group_->size(); }
  const DispatcherOptions& options() const { return options_; }
  int64_t local_experts() const { return options_.experts / size(); }
  int64_t first_local_expert() const { return rank() * local_experts(); }

  // indices [T, k] (I32 global expert ids); seq = tokens per sequence (capacity unit).
  // Collective: one all_to_all_v of counts, waited for.
  DispatchLayout plan(const Tensor& indices, int64_t seq) const;
  // rows [chunk.send_rows(), D] in send order -> received rows [chunk.recv_rows(), D] in
  // expert order (grouped by local expert: chunk.rows_per_local_expert()). `out`, when given,
  // is where wait() puts them (a buffer the caller allocated before queuing the transfer on a
  // stream); otherwise wait() allocates.
  PendingRows dispatch(const DispatchLayout& layout, int64_t chunk, const Tensor& rows,
                       const Tensor& out = Tensor()) const;
  // rows [chunk.recv_rows(), D] in expert order -> rows [chunk.send_rows(), D] in send order.
  PendingRows combine(const DispatchLayout& layout, int64_t chunk, const Tensor& rows,
                      const Tensor& out = Tensor()) const;

 private:
  std::shared_ptr<comm::Communicator> group_;
  DispatcherOptions options_;
};

}  // namespace trident::parallel::ep
