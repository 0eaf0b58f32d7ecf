#include "models/deepseek_v3/parallelize/expert_parallel_moe.h"

#include <algorithm>
#include <cstdlib>
#include <string>
#include <utility>
#include <vector>

#include "runtime/core/error.h"
#include "runtime/core/stream.h"
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

  std::vector<Tensor*> saved_activations() override {
    std::vector<Tensor*> out;
    for (Tensor& rows : combined) out.push_back(&rows);
    for (models::ExpertActivations& act : expert) {
      for (Tensor* t : act.saved()) out.push_back(t);
    }
    return out;
  }
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
  Tensor merged = Tensor::empty({total, width}, rows.front().dtype(), rows.front().device());
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
        if (n == 0) continue;
        const int64_t from = offsets[c][static_cast<size_t>(e * P + p)];
        Tensor block = merged.narrow(out_row, out_row + n);
        block.copy_from(rows[c].narrow(from, from + n));  // a device-to-device copy on a GPU
        out_row += n;
      }
    }
  }
  return merged;
}

// "<what> chunk <c>": how a queued item is named in stream errors.
std::string item_name(const char* what, size_t chunk) {
  return std::string(what) + " chunk " + std::to_string(chunk);
}

// Test only: TRIDENT_TEST_DROP_EP_WAIT=1 moves one wait: the expert GEMMs of a chunk run before
// its dispatched rows have arrived (the wait follows them), so that tests/layouts can show race
// hunting turning a missing wait into a failure.
bool drop_arrival_wait_for_test() {
  static const bool drop = [] {
    const char* value = std::getenv("TRIDENT_TEST_DROP_EP_WAIT");
    return value != nullptr && std::string(value) == "1";
  }();
  return drop;
}

// A compute-track span named "<what> <chunk>"; the name is built only while tracing.
TraceScope chunk_span(const char* what, size_t chunk) {
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

// One forward's work on the compute and ep.comm streams. Its buffers live here and the queued
// items refer to them, so a pass must outlive the synchronize of the fence that follows it.
// The caller decides the order in which the pieces are queued (forward alone, or interleaved
// with another micro-batch's backward).
class ForwardPass {
 public:
  ForwardPass(const parallel::ep::Dispatcher& dispatcher, const ExpertParallelOptions& options,
              DeviceStreams& streams, const Tensor& x, const Tensor& indices, const Tensor& weights,
              int64_t seq, const models::ExpertBanks& banks, const std::function<void()>& overlap)
      : dispatcher_(dispatcher),
        options_(options),
        streams_(streams),
        x_(x),
        banks_(banks),
        overlap_(overlap),
        s_(std::make_shared<EpState>()) {
    TRIDENT_CHECK(banks.count() == dispatcher.local_experts() &&
                      banks.gate.first_expert == dispatcher.first_local_expert(),
                  "EP rank ", dispatcher.rank(), " should hold experts [",
                  dispatcher.first_local_expert(), ", ",
                  dispatcher.first_local_expert() + dispatcher.local_experts(), "), its store has ",
                  banks.count(), " from ", banks.gate.first_expert);
    {
      TRIDENT_TRACE_SCOPE("ep plan");
      s_->layout = dispatcher.plan(indices, seq);
    }
    s_->dropped_slots = s_->layout.dropped_slots;
    s_->weights = weights;
    const size_t C = chunks();
    const int64_t width = x.size(1);
    xp_.resize(C);
    yp_.resize(C);
    sent_.resize(C);
    back_.resize(C);
    posted_.resize(C);
    computed_.resize(C);
    s_->expert.resize(C);
    s_->combined.resize(C);
    for (size_t c = 0; c < C; ++c) {
      xp_[c] = empty_stream_target({layout().chunks[c].recv_rows(), width}, DType::F32, x.device());
      s_->combined[c] =
          empty_stream_target({layout().chunks[c].send_rows(), width}, DType::F32, x.device());
    }
  }

  size_t chunks() const { return s_->layout.chunks.size(); }
  const parallel::ep::DispatchLayout& layout() const { return s_->layout; }
  const Event& posted(size_t c) const { return posted_[c]; }

  // Chunk c's rows sent to their experts' ranks (ep.comm, after x is ready).
  void dispatch(size_t c) {
    if (c == 0) streams_.ep_comm.wait(streams_.compute.record());  // x is ready
    streams_.ep_comm.enqueue(item_name("ep dispatch", c), [this, c] {
      const Tensor rows = parallel::ep::gather_send_rows(layout().chunks[c], x_);
      sent_[c] = dispatcher_.dispatch(layout(), static_cast<int64_t>(c), rows, xp_[c]);
    });
    posted_[c] = streams_.ep_comm.record();
  }
  // Chunk c's expert GEMMs once its rows arrived (compute); with overlap the compute stream
  // posts the combine itself, without a hand-over to the comm stream's thread (which on busy
  // shared cores waits for a core). Every rank must have posted all its dispatches before the
  // first combine (the caller orders that), so that every rank posts the same sequence.
  void experts(size_t c) {
    streams_.compute.wait(posted_[c]);
    streams_.compute.enqueue(item_name("ep experts fwd", c), [this, c] {
      const bool wait_first = !drop_arrival_wait_for_test();
      if (wait_first) sent_[c].wait();  // the rows, in expert order, in xp[c]
      const TraceScope span = chunk_span("ep experts fwd", c);
      yp_[c] = models::experts_forward(
          banks_, xp_[c], layout().chunks[c].rows_per_local_expert(layout().local_experts),
          s_->expert[c]);
      if (!wait_first) sent_[c].wait();
      if (options_.overlap) {
        back_[c] = dispatcher_.combine(layout(), static_cast<int64_t>(c), yp_[c], s_->combined[c]);
      }
    });
    computed_[c] = streams_.compute.record();
  }
  // Without overlap: chunk c's outputs sent back from the comm stream, and waited for.
  void combine_and_wait(size_t c) {
    streams_.ep_comm.wait(computed_[c]);
    streams_.ep_comm.enqueue(item_name("ep combine", c), [this, c] {
      back_[c] = dispatcher_.combine(layout(), static_cast<int64_t>(c), yp_[c], s_->combined[c]);
    });
    streams_.compute.wait(streams_.ep_comm.record());
    streams_.compute.enqueue(item_name("ep combine wait", c), [this, c] { back_[c].wait(); });
  }
  void shared() {
    streams_.compute.enqueue("ep shared expert", [this] {
      TRIDENT_TRACE_SCOPE("ep shared expert");
      overlap_();
    });
  }

  // On the host, once the streams ran the pass: each chunk's outputs, once back, summed with
  // their gate weights.
  Tensor finish(std::shared_ptr<models::RoutedExpertsState>& state) {
    Tensor out = Tensor::empty({layout().tokens, x_.size(1)}, DType::F32, x_.device());
    for (size_t c = 0; c < chunks(); ++c) {
      if (back_[c].valid()) back_[c].wait();
      parallel::ep::combine_weighted(layout().chunks[c], layout().top_k, s_->combined[c],
                                     s_->weights, out);
    }
    state = std::move(s_);
    return out;
  }

 private:
  const parallel::ep::Dispatcher& dispatcher_;
  const ExpertParallelOptions& options_;
  DeviceStreams& streams_;
  const Tensor& x_;
  const models::ExpertBanks& banks_;
  const std::function<void()>& overlap_;
  std::shared_ptr<EpState> s_;
  std::vector<Tensor> xp_, yp_;
  std::vector<parallel::ep::PendingRows> sent_, back_;
  std::vector<Event> posted_, computed_;
};

// One backward_input's work on the compute and ep.comm streams; the same rules as ForwardPass.
class BackwardPass {
 public:
  BackwardPass(const parallel::ep::Dispatcher& dispatcher, const ExpertParallelOptions& options,
               DeviceStreams& streams, const Tensor& dout, const models::ExpertBanks& banks,
               const std::function<void(const Tensor&)>& overlap, models::RoutedExpertsState& state)
      : dispatcher_(dispatcher),
        options_(options),
        streams_(streams),
        dout_(dout),
        banks_(banks),
        overlap_(overlap),
        s_(as_ep_state(state)) {
    const size_t C = chunks();
    const int64_t width = dout.size(1);
    // Gate-weight gradients need only the kept combined rows: all local.
    d_weights_ = Tensor::empty({layout().tokens, layout().top_k}, DType::F32, dout.device());
    d_rows_.resize(C);
    d_yp_.resize(C);
    d_xp_.resize(C);
    returned_.resize(C);
    sent_.resize(C);
    back_.resize(C);
    graded_.resize(C);
    posted_.resize(C);
    computed_.resize(C);
    for (size_t c = 0; c < C; ++c) {
      d_yp_[c] =
          empty_stream_target({layout().chunks[c].recv_rows(), width}, DType::F32, dout.device());
      returned_[c] =
          empty_stream_target({layout().chunks[c].send_rows(), width}, DType::F32, dout.device());
    }
  }

  size_t chunks() const { return s_.layout.chunks.size(); }
  const parallel::ep::DispatchLayout& layout() const { return s_.layout; }
  const Event& posted(size_t c) const { return posted_[c]; }

  // Chunk c's output gradients, weighted by the gates, and the gate-weight gradients (compute).
  void output_grad(size_t c) {
    streams_.compute.enqueue(item_name("ep gate grads", c), [this, c] {
      TRIDENT_TRACE_SCOPE("ep gate grads");
      d_rows_[c] = parallel::ep::weighted_output_grad(layout().chunks[c], layout().top_k, dout_,
                                                      s_.weights, s_.combined[c], d_weights_);
      s_.combined[c] = Tensor();
    });
    graded_[c] = streams_.compute.record();
  }
  void dispatch(size_t c) {
    streams_.ep_comm.wait(graded_[c]);
    streams_.ep_comm.enqueue(item_name("ep dispatch grads", c), [this, c] {
      sent_[c] = dispatcher_.dispatch(layout(), static_cast<int64_t>(c), d_rows_[c], d_yp_[c]);
    });
    posted_[c] = streams_.ep_comm.record();
  }
  void experts(size_t c) {
    streams_.compute.wait(posted_[c]);
    streams_.compute.enqueue(item_name("ep experts bwd", c), [this, c] {
      const bool wait_first = !drop_arrival_wait_for_test();
      if (wait_first) sent_[c].wait();
      const TraceScope span = chunk_span("ep experts bwd", c);
      d_xp_[c] = models::experts_backward_input(banks_, d_yp_[c], s_.expert[c]);
      if (!wait_first) sent_[c].wait();
      if (options_.overlap) {  // as in forward
        back_[c] = dispatcher_.combine(layout(), static_cast<int64_t>(c), d_xp_[c], returned_[c]);
      }
    });
    computed_[c] = streams_.compute.record();
  }
  void combine_and_wait(size_t c) {
    streams_.ep_comm.wait(computed_[c]);
    streams_.ep_comm.enqueue(item_name("ep combine grads", c), [this, c] {
      back_[c] = dispatcher_.combine(layout(), static_cast<int64_t>(c), d_xp_[c], returned_[c]);
    });
    streams_.compute.wait(streams_.ep_comm.record());
    streams_.compute.enqueue(item_name("ep combine grads wait", c), [this, c] { back_[c].wait(); });
  }
  // Router and shared-expert backward: needs every chunk's gate-weight gradients.
  void local() {
    streams_.compute.enqueue("ep router+shared backward", [this] {
      TRIDENT_TRACE_SCOPE("ep router+shared backward");
      overlap_(d_weights_);
    });
  }
  void weight_grads() {
    if (!options_.weight_grads_in_backward_input) return;
    streams_.compute.enqueue("ep expert weight grads", [this] { expert_weight_grads(banks_, s_); });
  }

  Tensor finish() {
    Tensor dx = Tensor::empty({layout().tokens, dout_.size(1)}, DType::F32, dout_.device());
    for (size_t c = 0; c < chunks(); ++c) {
      if (back_[c].valid()) back_[c].wait();
      parallel::ep::sum_rows_into(layout().chunks[c], layout().top_k, returned_[c], dx);
    }
    s_.weights = Tensor();
    return dx;
  }

 private:
  const parallel::ep::Dispatcher& dispatcher_;
  const ExpertParallelOptions& options_;
  DeviceStreams& streams_;
  const Tensor& dout_;
  const models::ExpertBanks& banks_;
  const std::function<void(const Tensor&)>& overlap_;
  EpState& s_;
  Tensor d_weights_;
  std::vector<Tensor> d_rows_, d_yp_, d_xp_, returned_;
  std::vector<parallel::ep::PendingRows> sent_, back_;
  std::vector<Event> graded_, posted_, computed_;
};

// Overlapped forward: every dispatch posted before any combine. The link then carries the rows
// the expert GEMMs wait for first, and the combines queue behind them instead of delaying chunk
// c+1. The shared expert starts once the first dispatch is on the wire: started at once, it
// would hold the rank's core while the comm stream's thread waits for one to post that
// dispatch (on 2 busy cores a 3 ms gap before the link's first byte, traced).
void queue_forward(ForwardPass& f) {
  const size_t C = f.chunks();
  for (size_t c = 0; c < C; ++c) f.dispatch(c);
  device_streams().compute.wait(f.posted(0));
  f.shared();
}

// Overlapped backward up to its expert GEMMs: chunk 0's output gradients go out first, the
// other chunks' are computed while they are on the wire, then the router and shared expert.
void queue_backward_head(BackwardPass& b) {
  for (size_t c = 0; c < b.chunks(); ++c) {
    b.output_grad(c);
    b.dispatch(c);
  }
  b.local();  // needs every chunk's gate-weight gradients: queued after them
}

}  // namespace

ExpertParallelMoe::ExpertParallelMoe(std::shared_ptr<parallel::comm::Communicator> ep_group,
                                     ExpertParallelOptions options)
    : dispatcher_(std::move(ep_group), options.dispatcher), options_(options) {}

Tensor ExpertParallelMoe::forward(const Tensor& x, const Tensor& indices, const Tensor& weights,
                                  int64_t seq, const models::ExpertBanks& banks,
                                  const std::function<void()>& overlap,
                                  std::shared_ptr<models::RoutedExpertsState>& state) const {
  DeviceStreams& streams = device_streams();
  ForwardPass f(dispatcher_, options_, streams, x, indices, weights, seq, banks, overlap);
  // The queued work refers to the pass's buffers: the call leaves once both streams ran it. A
  // transfer posted but not waited for when the host leaves early is completed by the
  // communicator's progress thread; the buffers it writes are kept alive by its handle.
  StreamFence fence({&streams.ep_comm, &streams.compute});  // after the pass: destroyed first
  const size_t C = f.chunks();
  if (options_.overlap) {
    queue_forward(f);
    streams.compute.wait(f.posted(C - 1));
    for (size_t c = 0; c < C; ++c) f.experts(c);
  } else {
    for (size_t c = 0; c < C; ++c) {
      // Nothing overlaps: the next chunk starts once this one's outputs are back.
      f.dispatch(c);
      f.experts(c);
      f.combine_and_wait(c);
    }
    f.shared();
  }
  fence.synchronize();  // every transfer is posted and every GEMM done
  return f.finish(state);
}

Tensor ExpertParallelMoe::backward_input(const Tensor& dout, const models::ExpertBanks& banks,
                                         const std::function<void(const Tensor&)>& overlap,
                                         models::RoutedExpertsState& state) const {
  DeviceStreams& streams = device_streams();
  BackwardPass b(dispatcher_, options_, streams, dout, banks, overlap, state);
  StreamFence fence({&streams.ep_comm, &streams.compute});
  const size_t C = b.chunks();
  if (options_.overlap) {
    queue_backward_head(b);
    streams.compute.wait(b.posted(C - 1));
    for (size_t c = 0; c < C; ++c) b.experts(c);
    b.weight_grads();  // while the combines are on the wire
  } else {
    for (size_t c = 0; c < C; ++c) b.output_grad(c);
    for (size_t c = 0; c < C; ++c) {
      b.dispatch(c);
      b.experts(c);
      b.combine_and_wait(c);
    }
    b.weight_grads();
    b.local();
  }
  fence.synchronize();  // every transfer is posted and every GEMM done
  return b.finish();
}

models::RoutedExpertsEngine::Paired ExpertParallelMoe::forward_backward_input(
    const ForwardInput& forward_in, const BackwardInput& backward_in) const {
  if (!options_.overlap) {
    return RoutedExpertsEngine::forward_backward_input(forward_in, backward_in);
  }
  // The host's span around the pair: in a trace, the two passes' items on the compute and
  // ep.comm tracks fall inside it (DualPipe's F&B blocks in training, `bench moe`'s paired runs).
  TRIDENT_TRACE_SCOPE("ep paired forward+backward");
  DeviceStreams& streams = device_streams();
  // The backward's plan exists; the forward's is made here (its counts exchange is a collective
  // every rank makes in the same place).
  ForwardPass f(dispatcher_, options_, streams, forward_in.x, forward_in.indices,
                forward_in.weights, forward_in.seq, forward_in.banks, forward_in.overlap);
  BackwardPass b(dispatcher_, options_, streams, backward_in.dout, backward_in.banks,
                 backward_in.overlap, backward_in.state);
  StreamFence fence({&streams.ep_comm, &streams.compute});
  // The link: the forward's dispatches, then the backward's; the combines queue behind them all
  // (every rank posts the same sequence). The compute stream: the backward's gate gradients
  // (which its dispatches need), the forward's shared expert and the backward's router and
  // shared expert while the forward's first rows travel, then the forward's expert GEMMs, the
  // backward's (its rows arrived meanwhile) and its weight gradients while the combines drain.
  const size_t Cf = f.chunks(), Cb = b.chunks();
  for (size_t c = 0; c < Cf; ++c) f.dispatch(c);
  queue_backward_head(b);
  streams.compute.wait(f.posted(0));
  f.shared();
  streams.compute.wait(b.posted(Cb - 1));  // posted after every forward dispatch
  for (size_t c = 0; c < Cf; ++c) f.experts(c);
  for (size_t c = 0; c < Cb; ++c) b.experts(c);
  b.weight_grads();
  fence.synchronize();
  Paired out;
  out.forward_out = f.finish(forward_in.state);
  out.backward_dx = b.finish();
  return out;
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
