#pragma once
// Where every routed (token, expert) slot of one rank goes under expert parallelism, and what
// the rank receives in return: the plan half of the dispatcher (parallel/ep/dispatcher.h),
// pure arithmetic on the routing with no communication.
//
// The group's P ranks hold the E routed experts in contiguous blocks of El = E / P (rank r holds
// experts [r·El, (r+1)·El), as ShardSelection{ep_rank, ep_size} does). A rank's T tokens are cut
// into `chunks` contiguous ranges that are dispatched one after another.
//
// Row orders:
//   send order   rows grouped by destination rank, then by the destination's local expert, then
//                by token: the order all_to_all_v moves them in.
//   expert order received rows grouped by local expert, then by source rank, then by the
//                source's token order: what the grouped expert GEMM needs. Since ranks hold
//                consecutive rows of the batch, an expert sees its tokens in global batch order.
#include <cstdint>
#include <vector>

#include "runtime/core/tensor.h"

namespace trident::parallel::ep {

struct ChunkLayout {
  int64_t first_token = 0;  // tokens [first_token, first_token + tokens) of the rank's batch
  int64_t tokens = 0;
  std::vector<int64_t> send_counts;     // [P·El]: rows to rank p for its local expert e
  std::vector<int64_t> recv_counts;     // [P·El]: rows from rank p for local expert e
  std::vector<int64_t> send_row_token;  // [send rows]: the (rank-local) token of each row
  std::vector<int64_t> slot_row;        // [tokens·k]: send row of slot (t, j); -1 = dropped

  int64_t send_rows() const;
  int64_t recv_rows() const;
  std::vector<int64_t> rows_to_ranks(int64_t ranks) const;                  // [P]
  std::vector<int64_t> rows_from_ranks(int64_t ranks) const;                // [P]
  std::vector<int64_t> rows_per_local_expert(int64_t local_experts) const;  // [El]
};

struct DispatchLayout {
  int64_t ranks = 1;          // P
  int64_t rank = 0;           // this rank in the group
  int64_t experts = 0;        // E
  int64_t local_experts = 0;  // El = E / P
  int64_t tokens = 0;         // T
  int64_t top_k = 0;          // k
  std::vector<ChunkLayout> chunks;
  int64_t dropped_slots = 0;  // slots over capacity on this rank: not sent, weight 0
};

struct LayoutOptions {
  int64_t experts = 0;           // E
  int64_t ranks = 1;             // P (must divide E)
  int64_t rank = 0;              // this rank
  int64_t chunks = 1;            // token chunks (≥ 1; chunks may be empty when T < chunks)
  double capacity_factor = 0.0;  // 0 = dropless
  int64_t seq = 0;               // tokens per sequence (the capacity unit); 0 = all T tokens
};

// Capacity of one expert within one sequence of `seq` tokens: ceil(factor · seq · k / E).
int64_t expert_capacity(double capacity_factor, int64_t seq, int64_t top_k, int64_t experts);

// The send side of every chunk from the routing (indices [T, k], I32 global expert ids).
// recv_counts stay empty: they come from the other ranks (Dispatcher::plan exchanges them).
// With a capacity factor, slot (t, j) is dropped when t's sequence already sent `capacity`
// earlier tokens (in token order, then slot order) to that expert.
DispatchLayout make_send_layout(const Tensor& indices, const LayoutOptions& options);

// Rows moved between [sender][local expert] (send/receive) and [local expert][sender] (expert)
// order. counts[p·El + e] = rows of block (p, e); both tensors [rows, D].
void sender_major_to_expert_major(const Tensor& src, const std::vector<int64_t>& counts,
                                  int64_t ranks, int64_t local_experts, Tensor& dst);
void expert_major_to_sender_major(const Tensor& src, const std::vector<int64_t>& counts,
                                  int64_t ranks, int64_t local_experts, Tensor& dst);

// ---- Token-side row operations (local) ----

// [send rows, D]: row i = x[send_row_token[i]]
Tensor gather_send_rows(const ChunkLayout& chunk, const Tensor& x);
// out[t] = Σ_j weights[t, j] · rows[slot_row(t, j)] for the chunk's tokens (dropped slots add 0).
void combine_weighted(const ChunkLayout& chunk, int64_t top_k, const Tensor& rows,
                      const Tensor& weights, Tensor& out);
// Mirror of combine_weighted: d rows [send rows, D] = weights[t, j] · dout[t]; and
// d_weights[t, j] = <dout[t], rows[slot_row(t, j)]> (0 for dropped slots). rows, saved by the
// forward, may be bf16.
Tensor weighted_output_grad(const ChunkLayout& chunk, int64_t top_k, const Tensor& dout,
                            const Tensor& weights, const Tensor& rows, Tensor& d_weights);
// Mirror of gather_send_rows: dx[t] = Σ_j rows[slot_row(t, j)] for the chunk's tokens.
void sum_rows_into(const ChunkLayout& chunk, int64_t top_k, const Tensor& rows, Tensor& dx);

}  // namespace trident::parallel::ep
