#include "parallel/ep/dispatch_layout.h"

#include <cmath>
#include <cstring>
#include <numeric>

#include "ops/ops.h"
#include "runtime/core/error.h"

namespace trident::parallel::ep {
namespace {

int64_t total(const std::vector<int64_t>& counts) {
  return std::accumulate(counts.begin(), counts.end(), int64_t{0});
}

std::vector<int64_t> block_sums(const std::vector<int64_t>& counts, int64_t blocks,
                                int64_t block_size) {
  std::vector<int64_t> sums(static_cast<size_t>(blocks), 0);
  for (int64_t b = 0; b < blocks; ++b) {
    for (int64_t i = 0; i < block_size; ++i) {
      sums[static_cast<size_t>(b)] += counts[static_cast<size_t>(b * block_size + i)];
    }
  }
  return sums;
}

// A host list of rows as an i32 index tensor on `device`, where the ops that read it run.
Tensor index_tensor(const std::vector<int64_t>& rows, Device device) {
  std::vector<int32_t> narrow(rows.begin(), rows.end());
  return Tensor::from_ints(narrow, {static_cast<int64_t>(narrow.size())}).on(device);
}

void check_rows(const Tensor& t, int64_t rows, const char* what) {
  TRIDENT_CHECK(t.dtype() == DType::F32 && t.dim() == 2 && t.size(0) == rows, what, ": expected ",
                rows, " f32 rows, got ", t.describe());
}

// The same for rows the forward saved for the backward: bf16 under bf16 activations
// (models/deepseek_v3/saved_activations.h; the op widens them).
void check_saved_rows(const Tensor& t, int64_t rows, const char* what) {
  TRIDENT_CHECK(
      (t.dtype() == DType::F32 || t.dtype() == DType::BF16) && t.dim() == 2 && t.size(0) == rows,
      what, ": expected ", rows, " f32 or bf16 rows, got ", t.describe());
}

// Moves the (rank, expert) blocks between the two orders in one op where the rows live: a GPU
// gets one gather launch, not a copy per block. `counts` are in sender-major order.
void move_blocks(const Tensor& src, const std::vector<int64_t>& counts, int64_t ranks,
                 int64_t local_experts, Tensor& dst, bool to_expert_major) {
  const int64_t rows = total(counts);
  check_rows(src, rows, "expert-parallel rows");
  check_rows(dst, rows, "expert-parallel rows");
  TRIDENT_CHECK(dst.size(1) == src.size(1), "row widths differ: ", src.describe(), " vs ",
                dst.describe());
  // An empty tensor moves nothing (and keeps its null data pointer away from the op: a rank
  // whose experts got no rows, as in a decode step).
  if (rows == 0) return;
  auto count = [&](int64_t p, int64_t e) {
    return counts[static_cast<size_t>(p * local_experts + e)];
  };
  // Where each block starts in sender-major order, then, walking the blocks in expert-major
  // order, the source row of every destination row.
  std::vector<int64_t> sender_off(counts.size());
  int64_t off = 0;
  for (int64_t p = 0; p < ranks; ++p) {
    for (int64_t e = 0; e < local_experts; ++e) {
      sender_off[static_cast<size_t>(p * local_experts + e)] = off;
      off += count(p, e);
    }
  }
  std::vector<int64_t> source(static_cast<size_t>(rows));
  int64_t expert_row = 0;
  for (int64_t e = 0; e < local_experts; ++e) {
    for (int64_t p = 0; p < ranks; ++p) {
      const int64_t sender_row = sender_off[static_cast<size_t>(p * local_experts + e)];
      for (int64_t i = 0; i < count(p, e); ++i, ++expert_row) {
        // to expert-major: destination row expert_row reads sender_row + i; back: the reverse.
        if (to_expert_major) {
          source[static_cast<size_t>(expert_row)] = sender_row + i;
        } else {
          source[static_cast<size_t>(sender_row + i)] = expert_row;
        }
      }
    }
  }
  ops::gather_rows(src, index_tensor(source, src.device()), dst);
}

}  // namespace

int64_t ChunkLayout::send_rows() const { return total(send_counts); }
int64_t ChunkLayout::recv_rows() const { return total(recv_counts); }

std::vector<int64_t> ChunkLayout::rows_to_ranks(int64_t ranks) const {
  return block_sums(send_counts, ranks, static_cast<int64_t>(send_counts.size()) / ranks);
}

std::vector<int64_t> ChunkLayout::rows_from_ranks(int64_t ranks) const {
  return block_sums(recv_counts, ranks, static_cast<int64_t>(recv_counts.size()) / ranks);
}

std::vector<int64_t> ChunkLayout::rows_per_local_expert(int64_t local_experts) const {
  std::vector<int64_t> rows(static_cast<size_t>(local_experts), 0);
  for (size_t i = 0; i < recv_counts.size(); ++i) {
    rows[i % static_cast<size_t>(local_experts)] += recv_counts[i];
  }
  return rows;
}

int64_t expert_capacity(double capacity_factor, int64_t seq, int64_t top_k, int64_t experts) {
  const double rows =
      capacity_factor * static_cast<double>(seq * top_k) / static_cast<double>(experts);
  return static_cast<int64_t>(std::ceil(rows - 1e-9));
}

DispatchLayout make_send_layout(const Tensor& indices, const LayoutOptions& options) {
  TRIDENT_CHECK(indices.dtype() == DType::I32 && indices.dim() == 2, "routing indices must be ",
                "[tokens, k] i32, got ", indices.describe());
  TRIDENT_CHECK(options.ranks >= 1 && options.experts % options.ranks == 0, "the ", options.ranks,
                " expert-parallel ranks must divide the ", options.experts, " experts");
  TRIDENT_CHECK(options.chunks >= 1, "a2a chunks must be ≥ 1, got ", options.chunks);
  DispatchLayout layout;
  layout.ranks = options.ranks;
  layout.rank = options.rank;
  layout.experts = options.experts;
  layout.local_experts = options.experts / options.ranks;
  layout.tokens = indices.size(0);
  layout.top_k = indices.size(1);
  const int64_t T = layout.tokens, k = layout.top_k;
  // The plan is host work: the routing comes back once (a synchronisation on a GPU), since the
  // row counts size the all-to-alls.
  const Tensor host_indices = indices.on(Device::CPU);
  const int32_t* idx = host_indices.data<int32_t>();

  // Capacity: per sequence and expert, earlier tokens first.
  std::vector<bool> kept(static_cast<size_t>(T * k), true);
  if (options.capacity_factor > 0.0) {
    const int64_t seq = options.seq > 0 ? options.seq : T;
    TRIDENT_CHECK(T % seq == 0, T, " tokens are not whole sequences of ", seq);
    const int64_t capacity = expert_capacity(options.capacity_factor, seq, k, options.experts);
    std::vector<int64_t> used(static_cast<size_t>(options.experts));
    for (int64_t t = 0; t < T; ++t) {
      if (t % seq == 0) std::fill(used.begin(), used.end(), 0);
      for (int64_t j = 0; j < k; ++j) {
        int64_t& n = used[static_cast<size_t>(idx[t * k + j])];
        if (n < capacity) {
          ++n;
        } else {
          kept[static_cast<size_t>(t * k + j)] = false;
          ++layout.dropped_slots;
        }
      }
    }
  }

  for (int64_t c = 0; c < options.chunks; ++c) {
    ChunkLayout chunk;
    chunk.first_token = c * T / options.chunks;
    chunk.tokens = (c + 1) * T / options.chunks - chunk.first_token;
    chunk.send_counts.assign(static_cast<size_t>(options.experts), 0);  // [P·El] = [E]
    const int64_t first_slot = chunk.first_token * k, slots = chunk.tokens * k;
    for (int64_t s = first_slot; s < first_slot + slots; ++s) {
      const int32_t e = idx[s];
      TRIDENT_CHECK(e >= 0 && e < options.experts, "expert index ", e, " outside [0, ",
                    options.experts, ")");
      if (kept[static_cast<size_t>(s)]) ++chunk.send_counts[static_cast<size_t>(e)];
    }
    // Global expert e = p·El + l is block (p, l) of send order: the blocks are simply experts
    // in ascending order. Walking slots in token order keeps each block in token order.
    std::vector<int64_t> next(static_cast<size_t>(options.experts), 0);
    std::exclusive_scan(chunk.send_counts.begin(), chunk.send_counts.end(), next.begin(),
                        int64_t{0});
    chunk.send_row_token.resize(static_cast<size_t>(chunk.send_rows()));
    chunk.slot_row.assign(static_cast<size_t>(slots), -1);
    for (int64_t s = first_slot; s < first_slot + slots; ++s) {
      if (!kept[static_cast<size_t>(s)]) continue;
      const int64_t row = next[static_cast<size_t>(idx[s])]++;
      chunk.slot_row[static_cast<size_t>(s - first_slot)] = row;
      chunk.send_row_token[static_cast<size_t>(row)] = s / k;
    }
    layout.chunks.push_back(std::move(chunk));
  }
  return layout;
}

void sender_major_to_expert_major(const Tensor& src, const std::vector<int64_t>& counts,
                                  int64_t ranks, int64_t local_experts, Tensor& dst) {
  move_blocks(src, counts, ranks, local_experts, dst, true);
}

void expert_major_to_sender_major(const Tensor& src, const std::vector<int64_t>& counts,
                                  int64_t ranks, int64_t local_experts, Tensor& dst) {
  move_blocks(src, counts, ranks, local_experts, dst, false);
}

Tensor gather_send_rows(const ChunkLayout& chunk, const Tensor& x) {
  TRIDENT_CHECK(x.dtype() == DType::F32 && x.dim() == 2, "tokens must be [T, D] f32, got ",
                x.describe());
  Tensor out = Tensor::empty({chunk.send_rows(), x.size(1)}, DType::F32, x.device());
  ops::gather_rows(x, index_tensor(chunk.send_row_token, x.device()), out);
  return out;
}

void combine_weighted(const ChunkLayout& chunk, int64_t top_k, const Tensor& rows,
                      const Tensor& weights, Tensor& out) {
  check_rows(rows, chunk.send_rows(), "combined rows");
  ops::combine_rows(rows, index_tensor(chunk.slot_row, rows.device()), top_k, weights,
                    chunk.first_token, out);
}

Tensor weighted_output_grad(const ChunkLayout& chunk, int64_t top_k, const Tensor& dout,
                            const Tensor& weights, const Tensor& rows, Tensor& d_weights) {
  check_saved_rows(rows, chunk.send_rows(), "combined rows");
  TRIDENT_CHECK(weights.size(-1) == top_k, "gate weights ", weights.describe(), " are not ", top_k,
                " per token");
  Tensor d_rows = Tensor::empty({chunk.send_rows(), dout.size(1)}, DType::F32, dout.device());
  ops::combine_rows_backward(dout, rows, weights, index_tensor(chunk.slot_row, dout.device()),
                             chunk.first_token, d_rows, d_weights);
  return d_rows;
}

void sum_rows_into(const ChunkLayout& chunk, int64_t top_k, const Tensor& rows, Tensor& dx) {
  check_rows(rows, chunk.send_rows(), "returned gradient rows");
  ops::combine_rows(rows, index_tensor(chunk.slot_row, rows.device()), top_k, Tensor(),
                    chunk.first_token, dx);
}

}  // namespace trident::parallel::ep
