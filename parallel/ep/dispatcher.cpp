#include "parallel/ep/dispatcher.h"

#include <utility>

#include "runtime/core/error.h"

namespace trident::parallel::ep {
namespace {

std::vector<int64_t> times(std::vector<int64_t> rows, int64_t width) {
  for (int64_t& r : rows) r *= width;
  return rows;
}

// The caller's output buffer, checked, or a new one of rows × width on `device`.
Tensor output_rows(const Tensor& out, int64_t rows, int64_t width, Device device, const char* what,
                   int64_t chunk) {
  if (!out.defined()) return Tensor::empty({rows, width}, DType::F32, device);
  TRIDENT_CHECK(
      out.dim() == 2 && out.size(0) == rows && out.size(1) == width && out.dtype() == DType::F32,
      what, " of chunk ", chunk, ": output buffer ", out.describe(), " is not f32[", rows, ", ",
      width, "]");
  return out;
}

}  // namespace

void DispatcherOptions::validate(int group_size) const {
  TRIDENT_USER_CHECK(experts > 0 && group_size > 0 && experts % group_size == 0,
                     "parallel.ep = ", group_size,
                     " must divide model.n_routed_experts = ", experts);
  TRIDENT_USER_CHECK(chunks >= 1, "parallel.a2a_chunks = ", chunks,
                     " must be ≥ 1 (1 = no chunked overlap)");
  TRIDENT_USER_CHECK(capacity_factor == 0.0 || capacity_factor >= 1.0,
                     "parallel.capacity_factor = ", capacity_factor,
                     " must be 0 (dropless) or ≥ 1");
}

bool PendingRows::ready() const {
  TRIDENT_CHECK(work_ != nullptr, "PendingRows: nothing was posted");
  return work_->test();
}

Tensor PendingRows::wait() {
  TRIDENT_CHECK(work_ != nullptr, "PendingRows: nothing was posted (or wait() was called twice)");
  work_->wait();
  work_.reset();
  if (block_counts_.empty()) return std::move(received_);  // received straight into out_
  Tensor ordered = out_.defined() ? out_
                                  : Tensor::empty({received_.size(0), received_.size(1)},
                                                  DType::F32, received_.device());
  sender_major_to_expert_major(received_, block_counts_, ranks_, local_experts_, ordered);
  received_ = Tensor();
  out_ = Tensor();
  return ordered;
}

Dispatcher::Dispatcher(std::shared_ptr<comm::Communicator> group, DispatcherOptions options)
    : group_(std::move(group)), options_(options) {
  TRIDENT_CHECK(group_ != nullptr, "Dispatcher needs an expert-parallel communicator");
  options_.validate(group_->size());
}

DispatchLayout Dispatcher::plan(const Tensor& indices, int64_t seq) const {
  LayoutOptions lo;
  lo.experts = options_.experts;
  lo.ranks = size();
  lo.rank = rank();
  lo.chunks = options_.chunks;
  lo.capacity_factor = options_.capacity_factor;
  lo.seq = seq;
  DispatchLayout layout = make_send_layout(indices, lo);

  // Block for rank p: for every chunk, the rows this rank sends to each of p's local experts.
  const int64_t P = size(), El = local_experts(), C = options_.chunks;
  Tensor send = Tensor::empty({P * C * El}, DType::I64);
  Tensor recv = Tensor::empty({P * C * El}, DType::I64);
  int64_t* s = send.data<int64_t>();
  for (int64_t p = 0; p < P; ++p) {
    for (int64_t c = 0; c < C; ++c) {
      for (int64_t e = 0; e < El; ++e) {
        s[(p * C + c) * El + e] =
            layout.chunks[static_cast<size_t>(c)].send_counts[static_cast<size_t>(p * El + e)];
      }
    }
  }
  const std::vector<int64_t> block(static_cast<size_t>(P), C * El);
  group_->all_to_all_v(send, block, recv, block)->wait();
  const int64_t* r = recv.data<int64_t>();
  for (int64_t c = 0; c < C; ++c) {
    ChunkLayout& chunk = layout.chunks[static_cast<size_t>(c)];
    chunk.recv_counts.assign(static_cast<size_t>(P * El), 0);
    for (int64_t p = 0; p < P; ++p) {
      for (int64_t e = 0; e < El; ++e) {
        const int64_t rows = r[(p * C + c) * El + e];
        TRIDENT_CHECK(rows >= 0, "rank ", p, " announced ", rows, " rows for local expert ", e);
        chunk.recv_counts[static_cast<size_t>(p * El + e)] = rows;
      }
    }
  }
  return layout;
}

PendingRows Dispatcher::dispatch(const DispatchLayout& layout, int64_t chunk, const Tensor& rows,
                                 const Tensor& out) const {
  const ChunkLayout& c = layout.chunks.at(static_cast<size_t>(chunk));
  TRIDENT_CHECK(rows.dim() == 2 && rows.size(0) == c.send_rows(), "dispatch of chunk ", chunk,
                ": expected ", c.send_rows(), " rows, got ", rows.describe());
  const int64_t width = rows.size(1);
  PendingRows pending;
  pending.received_ = Tensor::empty({c.recv_rows(), width}, DType::F32, rows.device());
  pending.out_ = output_rows(out, c.recv_rows(), width, rows.device(), "dispatch", chunk);
  pending.block_counts_ = c.recv_counts;
  pending.ranks_ = layout.ranks;
  pending.local_experts_ = layout.local_experts;
  pending.work_ =
      group_->all_to_all_v(rows, times(c.rows_to_ranks(layout.ranks), width), pending.received_,
                           times(c.rows_from_ranks(layout.ranks), width));
  return pending;
}

PendingRows Dispatcher::combine(const DispatchLayout& layout, int64_t chunk, const Tensor& rows,
                                const Tensor& out) const {
  const ChunkLayout& c = layout.chunks.at(static_cast<size_t>(chunk));
  TRIDENT_CHECK(rows.dim() == 2 && rows.size(0) == c.recv_rows(), "combine of chunk ", chunk,
                ": expected ", c.recv_rows(), " rows, got ", rows.describe());
  const int64_t width = rows.size(1);
  Tensor outgoing = Tensor::empty({c.recv_rows(), width}, DType::F32, rows.device());
  expert_major_to_sender_major(rows, c.recv_counts, layout.ranks, layout.local_experts, outgoing);
  PendingRows pending;
  pending.received_ = output_rows(out, c.send_rows(), width, rows.device(), "combine", chunk);
  pending.work_ =
      group_->all_to_all_v(outgoing, times(c.rows_from_ranks(layout.ranks), width),
                           pending.received_, times(c.rows_to_ranks(layout.ranks), width));
  return pending;
}

}  // namespace trident::parallel::ep
