#include "models/deepseek_v3/parallelize/expert_parallel_moe.h"

#include <algorithm>
#include <cstdlib>
#include <limits>
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

// "<what> chunk <c>": how a queued item is named in stream errors.
std::string item_name(const char* what, size_t chunk) {
  return std::string(what) + " chunk " + std::to_string(chunk);
}

// A buffer a stream will fill. While the streams hunt races (delay injection on) it starts as
// NaN, so a reader that misses its wait reads NaN rather than stale rows that happen to be right.
Tensor stream_output(const DeviceStreams& streams, int64_t rows, int64_t width) {
  Tensor buffer = Tensor::empty({rows, width});
  if (streams.hunting_races()) buffer.fill(std::numeric_limits<float>::quiet_NaN());
  return buffer;
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

// The queued work of one forward or backward refers to the call's own buffers, so the call
// leaves only once both streams have run it: synchronize() on the normal path (rethrowing a
// stream's error), the destructor when the host leaves early on an exception. A transfer posted
// but not waited for when the host leaves early is completed by the communicator's progress
// thread; the buffers it writes are kept alive by its handle.
class StreamsFence {
 public:
  explicit StreamsFence(DeviceStreams& streams) : streams_(streams) {}
  ~StreamsFence() {
    if (synchronized_) return;
    for (Stream* stream : {&streams_.ep_comm, &streams_.compute}) {
      try {
        stream->synchronize();
      } catch (const std::exception&) {  // the host's own exception is already on its way
      }
    }
  }
  StreamsFence(const StreamsFence&) = delete;
  StreamsFence& operator=(const StreamsFence&) = delete;
  void synchronize() {
    streams_.ep_comm.synchronize();
    streams_.compute.synchronize();
    synchronized_ = true;
  }

 private:
  DeviceStreams& streams_;
  bool synchronized_ = false;
};

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
  const size_t C = layout.chunks.size();
  const int64_t width = x.size(1);

  DeviceStreams& streams = device_streams();
  Stream& comm = streams.ep_comm;
  Stream& compute = streams.compute;
  std::vector<Tensor> xp(C), yp(C);
  std::vector<parallel::ep::PendingRows> sent(C), back(C);
  std::vector<Event> posted(C), computed(C);
  s->expert.resize(C);
  s->combined.resize(C);
  for (size_t c = 0; c < C; ++c) {
    xp[c] = stream_output(streams, layout.chunks[c].recv_rows(), width);
    s->combined[c] = stream_output(streams, layout.chunks[c].send_rows(), width);
  }
  StreamsFence fence(streams);  // after every buffer the queued work uses: destroyed before them
  comm.wait(compute.record());  // x is ready

  const auto dispatch = [&](size_t c) {
    comm.enqueue(item_name("ep dispatch", c), [&, c] {
      const Tensor rows = parallel::ep::gather_send_rows(layout.chunks[c], x);
      sent[c] = dispatcher_.dispatch(layout, static_cast<int64_t>(c), rows, xp[c]);
    });
    posted[c] = comm.record();
  };
  const auto experts = [&](size_t c) {
    compute.wait(posted[c]);
    compute.enqueue(item_name("ep experts fwd", c), [&, c] {
      const bool wait_first = !drop_arrival_wait_for_test();
      if (wait_first) sent[c].wait();  // the rows, in expert order, in xp[c]
      const TraceScope span = chunk_span("ep experts fwd", c);
      yp[c] = models::experts_forward(
          banks, xp[c], layout.chunks[c].rows_per_local_expert(layout.local_experts), s->expert[c]);
      if (!wait_first) sent[c].wait();
      if (options_.overlap) {
        back[c] = dispatcher_.combine(layout, static_cast<int64_t>(c), yp[c], s->combined[c]);
      }
    });
    computed[c] = compute.record();
  };
  const auto combine = [&](size_t c) {
    comm.wait(computed[c]);
    comm.enqueue(item_name("ep combine", c), [&, c] {
      back[c] = dispatcher_.combine(layout, static_cast<int64_t>(c), yp[c], s->combined[c]);
    });
  };
  const auto shared = [&] {
    compute.enqueue("ep shared expert", [&] {
      TRIDENT_TRACE_SCOPE("ep shared expert");
      overlap();
    });
  };
  if (options_.overlap) {
    // Every dispatch is posted before any combine: the link then carries the rows the expert
    // GEMMs wait for first, and the combines queue behind them instead of delaying chunk c+1.
    // The shared expert runs on the compute stream while the first dispatch is on the wire.
    // The compute stream posts each chunk's combine as soon as its GEMMs are done, without a
    // hand-over to the comm stream's thread (which on busy shared cores waits for a core), once
    // every dispatch is posted, so that every rank posts the same sequence.
    for (size_t c = 0; c < C; ++c) dispatch(c);
    // The shared expert starts once the first dispatch is on the wire. Started at once, it
    // would hold the rank's core while the comm stream's thread waits for one to post that
    // dispatch: on 2 busy cores a 3 ms gap before the link's first byte (traced).
    compute.wait(posted[0]);
    shared();
    compute.wait(posted[C - 1]);
    for (size_t c = 0; c < C; ++c) experts(c);
  } else {
    for (size_t c = 0; c < C; ++c) {
      dispatch(c);
      experts(c);
      combine(c);
      // Nothing overlaps: the next chunk starts once this one's outputs are back.
      compute.wait(comm.record());
      compute.enqueue(item_name("ep combine wait", c), [&, c] { back[c].wait(); });
    }
    shared();
  }
  fence.synchronize();  // every transfer is posted and every GEMM done

  // The host reads each chunk's outputs once they are back, while later chunks still travel.
  Tensor out = Tensor::empty({layout.tokens, width});
  for (size_t c = 0; c < C; ++c) {
    if (back[c].valid()) back[c].wait();
    parallel::ep::combine_weighted(layout.chunks[c], layout.top_k, s->combined[c], weights, out);
  }
  state = std::move(s);
  return out;
}

Tensor ExpertParallelMoe::backward_input(const Tensor& dout, const models::ExpertBanks& banks,
                                         const std::function<void(const Tensor&)>& overlap,
                                         models::RoutedExpertsState& state) const {
  EpState& s = as_ep_state(state);
  const parallel::ep::DispatchLayout& layout = s.layout;
  const size_t C = layout.chunks.size();
  const int64_t width = dout.size(1);

  DeviceStreams& streams = device_streams();
  Stream& comm = streams.ep_comm;
  Stream& compute = streams.compute;
  // Gate-weight gradients need only the kept combined rows: all local. Chunk 0's output
  // gradients go out first; the other chunks' are computed while they are on the wire.
  Tensor d_weights = Tensor::empty({layout.tokens, layout.top_k});
  std::vector<Tensor> d_rows(C), d_yp(C), d_xp(C), returned(C);
  std::vector<parallel::ep::PendingRows> sent(C), back(C);
  std::vector<Event> graded(C), posted(C), computed(C);
  for (size_t c = 0; c < C; ++c) {
    d_yp[c] = stream_output(streams, layout.chunks[c].recv_rows(), width);
    returned[c] = stream_output(streams, layout.chunks[c].send_rows(), width);
  }
  StreamsFence fence(streams);  // after every buffer the queued work uses: destroyed before them

  const auto output_grad = [&](size_t c) {
    compute.enqueue(item_name("ep gate grads", c), [&, c] {
      TRIDENT_TRACE_SCOPE("ep gate grads");
      d_rows[c] = parallel::ep::weighted_output_grad(layout.chunks[c], layout.top_k, dout,
                                                     s.weights, s.combined[c], d_weights);
      s.combined[c] = Tensor();
    });
    graded[c] = compute.record();
  };
  const auto dispatch = [&](size_t c) {
    comm.wait(graded[c]);
    comm.enqueue(item_name("ep dispatch grads", c), [&, c] {
      sent[c] = dispatcher_.dispatch(layout, static_cast<int64_t>(c), d_rows[c], d_yp[c]);
    });
    posted[c] = comm.record();
  };
  const auto experts = [&](size_t c) {
    compute.wait(posted[c]);
    compute.enqueue(item_name("ep experts bwd", c), [&, c] {
      const bool wait_first = !drop_arrival_wait_for_test();
      if (wait_first) sent[c].wait();
      const TraceScope span = chunk_span("ep experts bwd", c);
      d_xp[c] = models::experts_backward_input(banks, d_yp[c], s.expert[c]);
      if (!wait_first) sent[c].wait();
      if (options_.overlap) {  // as in forward
        back[c] = dispatcher_.combine(layout, static_cast<int64_t>(c), d_xp[c], returned[c]);
      }
    });
    computed[c] = compute.record();
  };
  const auto combine = [&](size_t c) {
    comm.wait(computed[c]);
    comm.enqueue(item_name("ep combine grads", c), [&, c] {
      back[c] = dispatcher_.combine(layout, static_cast<int64_t>(c), d_xp[c], returned[c]);
    });
  };
  const auto local = [&] {
    compute.enqueue("ep router+shared backward", [&] {
      TRIDENT_TRACE_SCOPE("ep router+shared backward");
      overlap(d_weights);
    });
  };
  const auto weight_grads = [&] {
    if (!options_.weight_grads_in_backward_input) return;
    compute.enqueue("ep expert weight grads", [&] { expert_weight_grads(banks, s); });
  };
  if (options_.overlap) {
    for (size_t c = 0; c < C; ++c) {
      output_grad(c);
      dispatch(c);
    }
    local();  // needs every chunk's gate-weight gradients: queued after them
    compute.wait(posted[C - 1]);
    for (size_t c = 0; c < C; ++c) experts(c);
    weight_grads();  // while the combines are on the wire
  } else {
    for (size_t c = 0; c < C; ++c) output_grad(c);
    for (size_t c = 0; c < C; ++c) {
      dispatch(c);
      experts(c);
      combine(c);
      compute.wait(comm.record());
      compute.enqueue(item_name("ep combine grads wait", c), [&, c] { back[c].wait(); });
    }
    weight_grads();
    local();
  }
  fence.synchronize();  // every transfer is posted and every GEMM done

  Tensor dx = Tensor::empty({layout.tokens, width});
  for (size_t c = 0; c < C; ++c) {
    if (back[c].valid()) back[c].wait();
    parallel::ep::sum_rows_into(layout.chunks[c], layout.top_k, returned[c], dx);
  }
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
