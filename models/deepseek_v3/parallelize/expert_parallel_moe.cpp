#include "models/deepseek_v3/parallelize/expert_parallel_moe.h"

#include <algorithm>
#include <utility>
#include <vector>

#include "runtime/core/error.h"
#include "runtime/core/trace.h"

namespace trident::models::parallelize {
namespace {

// What one layer's forward keeps for its backward.
struct EpState final : models::RoutedExpertsState {
  parallel::ep::DispatchLayout layout;
  Tensor weights;                                 // [T, k] gate weights
  std::vector<Tensor> combined;                   // per chunk: expert outputs in send order
  std::vector<models::ExpertActivations> expert;  // per chunk: expert-side activations
  bool weight_grads_done = false;
};

EpState& as_ep_state(models::RoutedExpertsState& state) {
  auto* ep = dynamic_cast<EpState*>(&state);
  TRIDENT_CHECK(ep != nullptr, "MoE backward got a state this engine did not make");
  return *ep;
}

// Rows of every chunk (each in expert order: [local expert][sender]) merged into one tensor in
// [local expert][sender][chunk] order. Ranks hold consecutive rows of the batch and chunks are
// consecutive tokens, so this is each expert's tokens in global batch order: the weight-gradient
// GEMMs then sum in exactly the order of the single-rank layer, whatever the chunking.
Tensor merge_chunks(const parallel::ep::DispatchLayout& layout, const std::vector<Tensor>& rows) {
  const int64_t P = layout.ranks, El = layout.local_experts;
  int64_t total = 0, width = 0;
  for (const Tensor& t : rows) {
    total += t.size(0);
    width = t.size(1);
  }
  Tensor merged = Tensor::empty({total, width});
  float* dst = merged.data<float>();
  // Row offset of block (e, p) inside each chunk's expert-order tensor.
  std::vector<std::vector<int64_t>> offsets(rows.size());
  for (size_t c = 0; c < rows.size(); ++c) {
    const std::vector<int64_t>& counts = layout.chunks[c].recv_counts;
    offsets[c].resize(static_cast<size_t>(P * El));
    int64_t off = 0;
    for (int64_t e = 0; e < El; ++e) {
      for (int64_t p = 0; p < P; ++p) {
        offsets[c][static_cast<size_t>(e * P + p)] = off;
        off += counts[static_cast<size_t>(p * El + e)];
      }
    }
  }
  int64_t out_row = 0;
  for (int64_t e = 0; e < El; ++e) {
    for (int64_t p = 0; p < P; ++p) {
      for (size_t c = 0; c < rows.size(); ++c) {
        const int64_t n = layout.chunks[c].recv_counts[static_cast<size_t>(p * El + e)];
        const float* src =
            rows[c].data<float>() + offsets[c][static_cast<size_t>(e * P + p)] * width;
        std::copy(src, src + n * width, dst + out_row * width);
        out_row += n;
      }
    }
  }
  return merged;
}

// A compute-track span named "<what> <chunk>"; the name is built only while tracing.
TraceScope chunk_span(const char* what, int64_t chunk) {
  return TraceScope(
      Trace::enabled() ? std::string(what) + " " + std::to_string(chunk) : std::string(),
      TraceTrack::Compute);
}

// Expert weight gradients of every chunk at once, in the single-rank row order.
void expert_weight_grads(const models::ExpertBanks& banks, EpState& s) {
  TRIDENT_TRACE_SCOPE("ep expert weight grads");
  models::ExpertActivations all;
  all.counts.assign(static_cast<size_t>(s.layout.local_experts), 0);
  for (const parallel::ep::ChunkLayout& chunk : s.layout.chunks) {
    const std::vector<int64_t> rows = chunk.rows_per_local_expert(s.layout.local_experts);
    for (size_t e = 0; e < rows.size(); ++e) all.counts[e] += rows[e];
  }
  auto merge = [&](Tensor models::ExpertActivations::*field) {
    std::vector<Tensor> rows;
    for (models::ExpertActivations& act : s.expert) {
      rows.push_back(act.*field);
      act.*field = Tensor();
    }
    return merge_chunks(s.layout, rows);
  };
  all.xp = merge(&models::ExpertActivations::xp);
  all.ap = merge(&models::ExpertActivations::ap);
  all.d_yp = merge(&models::ExpertActivations::d_yp);
  all.d_gp = merge(&models::ExpertActivations::d_gp);
  all.d_up = merge(&models::ExpertActivations::d_up);
  models::experts_backward_weight(banks, all);
  s.expert.clear();
  s.weight_grads_done = true;
}

}  // namespace

ExpertParallelMoe::ExpertParallelMoe(std::shared_ptr<parallel::comm::Communicator> ep_group,
                                     ExpertParallelOptions options)
    : dispatcher_(std::move(ep_group), options.dispatcher), options_(options) {}

Tensor ExpertParallelMoe::forward(const Tensor& x, const Tensor& indices, const Tensor& weights,
                                  int64_t seq, const models::ExpertBanks& banks,
                                  const std::function<void()>& overlap,
                                  std::shared_ptr<models::RoutedExpertsState>& state) const {
  TRIDENT_CHECK(banks.count() == dispatcher_.local_experts() &&
                    banks.gate.first_expert == dispatcher_.first_local_expert(),
                "EP rank ", dispatcher_.rank(), " should hold experts [",
                dispatcher_.first_local_expert(), ", ",
                dispatcher_.first_local_expert() + dispatcher_.local_experts(), "), its store has ",
                banks.count(), " from ", banks.gate.first_expert);
  auto s = std::make_shared<EpState>();
  {
    TRIDENT_TRACE_SCOPE("ep plan");
    s->layout = dispatcher_.plan(indices, seq);
  }
  s->dropped_slots = s->layout.dropped_slots;
  s->weights = weights;
  const parallel::ep::DispatchLayout& layout = s->layout;
  const int64_t C = static_cast<int64_t>(layout.chunks.size());
  const auto chunk = [&](int64_t c) -> const parallel::ep::ChunkLayout& {
    return layout.chunks[static_cast<size_t>(c)];
  };
  const auto send = [&](int64_t c) {
    return dispatcher_.dispatch(layout, c, parallel::ep::gather_send_rows(chunk(c), x));
  };
  s->expert.resize(static_cast<size_t>(C));
  s->combined.resize(static_cast<size_t>(C));
  std::vector<parallel::ep::PendingRows> dispatched(static_cast<size_t>(C)),
      combined(static_cast<size_t>(C));

  dispatched[0] = send(0);
  // Every dispatch is posted before any combine: the link then carries the rows the expert
  // GEMMs wait for first, and the combines queue behind them instead of delaying chunk c+1.
  if (options_.overlap) {
    for (int64_t c = 1; c < C; ++c) dispatched[static_cast<size_t>(c)] = send(c);
  }
  const auto run_overlap = [&] {
    TRIDENT_TRACE_SCOPE("ep shared expert");
    overlap();
  };
  if (options_.overlap) run_overlap();
  for (int64_t c = 0; c < C; ++c) {
    if (!dispatched[static_cast<size_t>(c)].valid()) dispatched[static_cast<size_t>(c)] = send(c);
    const Tensor xp = dispatched[static_cast<size_t>(c)].wait();
    const TraceScope span = chunk_span("ep experts fwd", c);
    const Tensor yp =
        models::experts_forward(banks, xp, chunk(c).rows_per_local_expert(layout.local_experts),
                                s->expert[static_cast<size_t>(c)]);
    combined[static_cast<size_t>(c)] = dispatcher_.combine(layout, c, yp);
    if (!options_.overlap)
      s->combined[static_cast<size_t>(c)] = combined[static_cast<size_t>(c)].wait();
  }
  Tensor out = Tensor::empty({layout.tokens, x.size(1)});
  for (int64_t c = 0; c < C; ++c) {
    Tensor& rows = s->combined[static_cast<size_t>(c)];
    if (!rows.defined()) rows = combined[static_cast<size_t>(c)].wait();
    parallel::ep::combine_weighted(chunk(c), layout.top_k, rows, weights, out);
  }
  if (!options_.overlap) run_overlap();
  state = std::move(s);
  return out;
}

Tensor ExpertParallelMoe::backward_input(const Tensor& dout, const models::ExpertBanks& banks,
                                         const std::function<void(const Tensor&)>& overlap,
                                         models::RoutedExpertsState& state) const {
  EpState& s = as_ep_state(state);
  const parallel::ep::DispatchLayout& layout = s.layout;
  const int64_t C = static_cast<int64_t>(layout.chunks.size());
  const auto chunk = [&](int64_t c) -> const parallel::ep::ChunkLayout& {
    return layout.chunks[static_cast<size_t>(c)];
  };
  // Gate-weight gradients need only the kept combined rows: all local. Chunk 0's output
  // gradients go out first; the other chunks' are computed while they are on the wire.
  Tensor d_weights = Tensor::empty({layout.tokens, layout.top_k});
  std::vector<Tensor> d_rows(static_cast<size_t>(C));
  const auto output_grad = [&](int64_t c) {
    TRIDENT_TRACE_SCOPE("ep gate grads");
    d_rows[static_cast<size_t>(c)] = parallel::ep::weighted_output_grad(
        chunk(c), layout.top_k, dout, s.weights, s.combined[static_cast<size_t>(c)], d_weights);
    s.combined[static_cast<size_t>(c)] = Tensor();
  };
  const auto send = [&](int64_t c) {
    return dispatcher_.dispatch(layout, c, d_rows[static_cast<size_t>(c)]);
  };
  std::vector<parallel::ep::PendingRows> dispatched(static_cast<size_t>(C)),
      combined(static_cast<size_t>(C));
  std::vector<Tensor> returned(static_cast<size_t>(C));

  output_grad(0);
  dispatched[0] = send(0);
  for (int64_t c = 1; c < C; ++c) {
    output_grad(c);
    if (options_.overlap) dispatched[static_cast<size_t>(c)] = send(c);  // as in forward
  }
  const auto run_overlap = [&] {
    TRIDENT_TRACE_SCOPE("ep router+shared backward");
    overlap(d_weights);
  };
  if (options_.overlap) run_overlap();
  for (int64_t c = 0; c < C; ++c) {
    if (!dispatched[static_cast<size_t>(c)].valid()) dispatched[static_cast<size_t>(c)] = send(c);
    const Tensor d_yp = dispatched[static_cast<size_t>(c)].wait();
    const TraceScope span = chunk_span("ep experts bwd", c);
    const Tensor d_xp =
        models::experts_backward_input(banks, d_yp, s.expert[static_cast<size_t>(c)]);
    combined[static_cast<size_t>(c)] = dispatcher_.combine(layout, c, d_xp);
    if (!options_.overlap)
      returned[static_cast<size_t>(c)] = combined[static_cast<size_t>(c)].wait();
  }
  if (options_.weight_grads_in_backward_input) expert_weight_grads(banks, s);
  Tensor dx = Tensor::empty({layout.tokens, dout.size(1)});
  for (int64_t c = 0; c < C; ++c) {
    Tensor& rows = returned[static_cast<size_t>(c)];
    if (!rows.defined()) rows = combined[static_cast<size_t>(c)].wait();
    parallel::ep::sum_rows_into(chunk(c), layout.top_k, rows, dx);
  }
  if (!options_.overlap) run_overlap();
  s.weights = Tensor();
  return dx;
}

void ExpertParallelMoe::backward_weight(const models::ExpertBanks& banks,
                                        models::RoutedExpertsState& state) const {
  EpState& s = as_ep_state(state);
  if (!s.weight_grads_done) expert_weight_grads(banks, s);
}

int64_t experts_per_node(int64_t experts, int64_t ep, int64_t etp, int64_t ranks_per_node) {
  TRIDENT_CHECK(ep >= 1 && experts % ep == 0, "parallel.ep = ", ep,
                " must divide model.n_routed_experts = ", experts);
  const int64_t ep_ranks_per_node =
      std::max<int64_t>(1, ranks_per_node / std::max<int64_t>(1, etp));
  return std::min(experts, experts / ep * ep_ranks_per_node);
}

}  // namespace trident::models::parallelize
