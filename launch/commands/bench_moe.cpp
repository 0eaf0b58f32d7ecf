// `trident bench moe`: one DeepSeekMoE layer, forward + backward, under expert parallelism over
// modelled links (DelayedLink), to show how much of the all-to-all the overlap hides. For each
// link speed and chunk count, measured in the same run, the runs taking turns inside every
// iteration (median over iterations, max over ranks):
//   compute     the layer on an undelayed link, nothing overlapped (the real loopback
//               all-to-alls are included: they are what "free" communication costs here)
//   comm        the layer's all-to-alls alone on the modelled link (count exchange, then each
//               chunk's dispatch and combine, forward and backward, with the same row counts)
//   no-overlap  the layer on the modelled link, one chunk, every all-to-all waited for at once
//   overlap     the layer on the modelled link with the shared expert and k chunks overlapped
//   ratio       overlap / max(comm, compute): 1 means the shorter of the two was fully hidden.
//   bound       what overlap can reach inside one layer: the backward cannot start before the
//               forward ends, so each phase takes at least the longer of its own comm (half of
//               "comm": both passes move the same rows) and its own compute (the forward timed
//               alone on the undelayed link; the backward is the rest of "compute"):
//               max(comm/2, fwd) + max(comm/2, compute − fwd). The forward computes half what
//               the backward does, so with comm ≈ compute the bound is well above
//               max(comm, compute); only pairing one micro-batch's forward with another's
//               backward (DualPipe) could close that gap.
//   vs bound    overlap / bound: how much of the reachable overlap the layer realizes.
//   paired      DualPipe's pairing: one micro-batch's forward together with another's backward
//               (MoeLayer::forward_backward_input), the same work as one layer step, the two
//               passes' all-to-alls and GEMMs interleaved on the streams; the earlier
//               micro-batch's forward runs untimed before each iteration.
//   p.ratio     paired / max(comm, compute).
// With --trace DIR, after the table one more overlapped layer and one no-overlap layer run with
// tracing on (link --trace-gbps, --trace-chunks chunks) and every rank writes
// DIR/trace_rank<N>.json; launch/plots/moe_timeline.py draws them.
#include <mpi.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <functional>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "launch/cli.h"
#include "models/deepseek_v3/dims.h"
#include "models/deepseek_v3/moe.h"
#include "models/deepseek_v3/parallelize/expert_parallel_moe.h"
#include "models/deepseek_v3/parameters.h"
#include "models/deepseek_v3/registry.h"
#include "parallel/comm/delayed_link.h"
#include "parallel/comm/tracing_communicator.h"
#include "parallel/context.h"
#include "parallel/mpi_session.h"
#include "runtime/config/config.h"
#include "runtime/core/error.h"
#include "runtime/core/rng.h"
#include "runtime/core/trace.h"

namespace trident {
namespace {

using models::parallelize::ExpertParallelMoe;
using models::parallelize::ExpertParallelOptions;
using parallel::comm::Communicator;

struct BenchShape {
  long long tokens = 2048;  // per rank
  long long hidden = 256;
  long long expert_ffn = 256;
  long long experts = 16;
  long long top_k = 4;
  long long shared = 1;
  long long seq = 512;
};

config::ModelConfig layer_config(const BenchShape& s) {
  config::ModelConfig c;
  c.set_name("bench-moe");
  c.set_vocab_size(256);
  c.set_hidden_size(s.hidden);
  c.set_intermediate_size(s.expert_ffn);
  c.set_moe_intermediate_size(s.expert_ffn);
  c.set_num_hidden_layers(1);
  c.set_first_k_dense_replace(0);
  c.set_moe_layer_freq(1);
  c.set_num_attention_heads(2);
  c.set_q_lora_rank(16);
  c.set_kv_lora_rank(16);
  c.set_qk_nope_head_dim(8);
  c.set_qk_rope_head_dim(4);
  c.set_v_head_dim(8);
  c.set_n_routed_experts(s.experts);
  c.set_n_shared_experts(s.shared);
  c.set_num_experts_per_tok(s.top_k);
  c.set_n_group(1);
  c.set_topk_group(1);
  c.set_routed_scaling_factor(2.5);
  c.set_scoring_func("sigmoid");
  c.set_topk_method("noaux_tc");
  c.set_norm_topk_prob(true);
  c.set_rms_norm_eps(1e-6);
  c.set_rope_theta(10000);
  c.set_max_position_embeddings(s.seq);
  c.set_num_nextn_predict_layers(0);
  c.set_initializer_range(0.02);
  c.set_torch_dtype("float32");
  return c;
}

Tensor random_tensor(int64_t rows, int64_t cols, uint64_t stream, int rank) {
  const CounterRng rng(static_cast<uint64_t>(rank) + 1, stream);
  Tensor t = Tensor::empty({rows, cols});
  float* d = t.data<float>();
  for (int64_t i = 0; i < rows * cols; ++i) d[i] = rng.normal(static_cast<uint64_t>(i));
  return t;
}

double max_over_ranks(double value) {
  double out = 0.0;
  MPI_Allreduce(&value, &out, 1, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
  return out;
}

// What one column times, and the untimed work it needs first (may be empty).
struct Body {
  std::function<void()> run;
  std::function<void()> setup;
};

// Median over iterations of the slowest rank's time (ranks start each run together). The bodies
// take turns inside every iteration, so a change in machine load hits all of them alike.
std::vector<double> time_ms(int warmup, int iters, const std::vector<Body>& bodies) {
  std::vector<std::vector<double>> samples(bodies.size());
  for (int i = 0; i < warmup + iters; ++i) {
    for (size_t b = 0; b < bodies.size(); ++b) {
      if (bodies[b].setup) bodies[b].setup();
      MPI_Barrier(MPI_COMM_WORLD);
      const auto start = std::chrono::steady_clock::now();
      bodies[b].run();
      const double ms =
          std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start)
              .count();
      const double slowest = max_over_ranks(ms);
      if (i >= warmup) samples[b].push_back(slowest);
    }
  }
  std::vector<double> medians;
  for (std::vector<double>& s : samples) {
    std::sort(s.begin(), s.end());
    medians.push_back(s[s.size() / 2]);
  }
  return medians;
}

std::vector<double> parse_list(const std::string& flag, const std::string& list) {
  std::vector<double> out;
  std::stringstream in(list);
  std::string item;
  while (std::getline(in, item, ',')) {
    try {
      out.push_back(std::stod(item));
    } catch (const std::exception&) {
      TRIDENT_USER_FAIL("trident bench moe: ", flag, " entry '", item, "' is not a number");
    }
  }
  TRIDENT_USER_CHECK(!out.empty(), "trident bench moe: ", flag, " is empty");
  return out;
}

// The MoE layer of a one-layer model whose store holds this rank's experts.
struct Layer {
  models::ParameterRegistry registry;
  models::ParameterStore store;
  models::ModelDims dims;
  models::MoeLayer moe;
  Layer(const config::ModelConfig& config, int ep_rank, int ep_size)
      : registry(config),
        store(registry, models::ShardSelection{0, 1, 0, 1, ep_rank, ep_size, {}}),
        dims(models::model_dims(config)),
        moe(dims,
            (store.initialize(7), models::moe_weights(store, 0, "model.layers.0.mlp.", dims))) {}
};

}  // namespace
}  // namespace trident

TRIDENT_COMMAND(bench_moe, "bench moe",
                "expert-parallel MoE layer: all-to-all/compute overlap over modelled links") {
  using namespace trident;
  BenchShape shape;
  std::string gbps_list = "0.25,0.5,1,2";
  std::string chunks_list = "1,2,4,8";
  double latency_us = 20;
  long long iters = 5;
  long long warmup = 1;
  std::string trace_dir;
  double trace_gbps = 0;
  long long trace_chunks = 0;
  launch::ArgParser parser("bench moe");
  parser.add_int("--tokens", &shape.tokens, "tokens per rank (default 2048)");
  parser.add_int("--hidden", &shape.hidden, "hidden size H (default 256)");
  parser.add_int("--expert-ffn", &shape.expert_ffn, "expert intermediate size Fe (default 256)");
  parser.add_int("--experts", &shape.experts, "routed experts E, a multiple of the ranks (16)");
  parser.add_int("--top-k", &shape.top_k, "experts per token k (default 4)");
  parser.add_int("--shared", &shape.shared, "shared experts (default 1)");
  parser.add_int("--seq", &shape.seq, "tokens per sequence (default 512)");
  parser.add_string("--gbps", &gbps_list, "modelled EP link bandwidths, GB/s (0.25,0.5,1,2)");
  parser.add_string("--chunks", &chunks_list, "a2a chunk counts to try (1,2,4,8)");
  parser.add_double("--latency-us", &latency_us, "modelled latency per all-to-all (20 us)");
  parser.add_int("--iters", &iters, "timed iterations (default 5)");
  parser.add_int("--warmup", &warmup, "untimed iterations (default 1)");
  parser.add_string("--trace", &trace_dir,
                    "after the table, trace one overlapped and one no-overlap layer into "
                    "DIR/trace_rank<N>.json");
  parser.add_double("--trace-gbps", &trace_gbps, "link of the traced run (first of --gbps)");
  parser.add_int("--trace-chunks", &trace_chunks, "chunks of the traced run (last of --chunks)");
  if (!parser.parse(args)) return 0;
  TRIDENT_USER_CHECK(shape.tokens > 0 && shape.seq > 0 && shape.tokens % shape.seq == 0,
                     "trident bench moe: --tokens (", shape.tokens,
                     ") must be a positive multiple of --seq (", shape.seq, ")");
  TRIDENT_USER_CHECK(iters > 0 && warmup >= 0, "trident bench moe: --iters must be positive");
  const std::vector<double> speeds = parse_list("--gbps", gbps_list);
  std::vector<int64_t> chunk_counts;
  for (double c : parse_list("--chunks", chunks_list)) {
    TRIDENT_USER_CHECK(c >= 1, "trident bench moe: --chunks entries must be ≥ 1");
    chunk_counts.push_back(static_cast<int64_t>(c));
  }

  parallel::MpiSession session(nullptr, nullptr);
  // Every rank of the job is one expert-parallel group (dp = ep = ranks).
  config::TridentConfig layout = config::default_config();
  layout.mutable_parallel()->set_dp(session.world_size());
  layout.mutable_parallel()->set_ep(session.world_size());
  const auto context = parallel::make_parallel_context(layout);
  TRIDENT_USER_CHECK(session.world_size() >= 2,
                     "trident bench moe: run under mpirun with at least 2 ranks (ep = the number "
                     "of ranks)");
  const std::shared_ptr<Communicator> free_link = context->shared_group(parallel::MeshAxis::Ep);
  const int rank = free_link->rank(), ranks = free_link->size();
  TRIDENT_USER_CHECK(shape.experts % ranks == 0, "trident bench moe: --experts (", shape.experts,
                     ") must be a multiple of the ", ranks, " ranks");
  const config::ModelConfig config = layer_config(shape);
  Layer layer(config, rank, ranks);
  models::MoeLayer& moe = layer.moe;

  const int64_t T = shape.tokens, H = shape.hidden;
  const Tensor x = random_tensor(T, H, 1, rank);
  const Tensor dout = random_tensor(T, H, 2, rank);
  models::SequenceLayout seq_layout;
  seq_layout.batch = T / shape.seq;
  seq_layout.seq = shape.seq;

  auto engine = [&](std::shared_ptr<Communicator> comm, int64_t chunks, bool overlap) {
    ExpertParallelOptions options;
    options.dispatcher.experts = shape.experts;
    options.dispatcher.chunks = chunks;
    options.overlap = overlap;
    options.weight_grads_in_backward_input = overlap;
    return std::make_shared<const ExpertParallelMoe>(std::move(comm), options);
  };
  auto layer_step = [&] {
    models::MoeContext ctx;
    moe.forward(x, seq_layout, 0.0f, ctx);
    moe.backward_input(dout, ctx);
    moe.backward_weight(ctx);
  };
  auto forward_step = [&] {
    models::MoeContext ctx;
    moe.forward(x, seq_layout, 0.0f, ctx);
  };
  // The routing of this input, for the communication-only runs.
  models::MoeContext probe;
  moe.set_routed_engine(engine(free_link, 1, false));
  moe.forward(x, seq_layout, 0.0f, probe);
  const Tensor indices = probe.indices;
  probe = models::MoeContext{};

  if (rank == 0) {
    std::printf(
        "# trident bench moe: %d ranks, %lld tokens/rank, H %lld, E %lld (%lld/rank), "
        "k %lld, Fe %lld, shared %lld; latency %.0f us; median of %lld, max over ranks\n",
        ranks, shape.tokens, shape.hidden, shape.experts, shape.experts / ranks, shape.top_k,
        shape.expert_ffn, shape.shared, latency_us, iters);
    std::printf("%10s %7s %12s %10s %15s %12s %8s %10s %9s %11s %8s\n", "link(GB/s)", "chunks",
                "compute(ms)", "comm(ms)", "no-overlap(ms)", "overlap(ms)", "ratio", "bound(ms)",
                "vs bound", "paired(ms)", "p.ratio");
  }
  for (const double gbps : speeds) {
    parallel::comm::LinkModel link;
    link.latency_us = latency_us;
    link.gbytes_per_s = gbps;
    const auto delayed = std::make_shared<parallel::comm::DelayedLink>(free_link, link);
    const auto compute_engine = engine(free_link, 1, false);
    const auto sequential_engine = engine(delayed, 1, false);
    for (const int64_t chunks : chunk_counts) {
      parallel::ep::DispatcherOptions comm_options;
      comm_options.experts = shape.experts;
      comm_options.chunks = chunks;
      const parallel::ep::Dispatcher dispatcher(delayed, comm_options);
      // All-to-alls alone: the dispatches posted back to back, each combine as soon as its
      // dispatch arrived (what the overlapped layer would do with instant compute), twice.
      const auto comm_only = [&] {
        const parallel::ep::DispatchLayout plan = dispatcher.plan(indices, shape.seq);
        for (int pass = 0; pass < 2; ++pass) {
          std::vector<parallel::ep::PendingRows> out, back;
          for (int64_t c = 0; c < chunks; ++c) {
            const auto& chunk = plan.chunks[static_cast<size_t>(c)];
            out.push_back(dispatcher.dispatch(plan, c, Tensor::empty({chunk.send_rows(), H})));
          }
          for (int64_t c = 0; c < chunks; ++c) {
            back.push_back(dispatcher.combine(plan, c, out[static_cast<size_t>(c)].wait()));
          }
          for (auto& pending : back) pending.wait();
        }
      };
      const auto overlap_engine = engine(delayed, chunks, true);
      const auto with = [&](std::shared_ptr<const ExpertParallelMoe> e,
                            const std::function<void()>& step) {
        return Body{[&moe, step, e] {
                      moe.set_routed_engine(e);
                      step();
                    },
                    nullptr};
      };
      // The paired step: the previous micro-batch's forward (untimed), then this one's forward
      // with that one's backward, then its weight gradients.
      models::MoeContext previous;
      const Body paired{[&] {
                          models::MoeContext next;
                          moe.forward_backward_input(x, seq_layout, 0.0f, next, moe, dout,
                                                     previous);
                          moe.backward_weight(previous);
                        },
                        [&] {
                          moe.set_routed_engine(overlap_engine);
                          previous = models::MoeContext{};
                          moe.forward(x, seq_layout, 0.0f, previous);
                        }};
      const std::vector<double> t =
          time_ms(static_cast<int>(warmup), static_cast<int>(iters),
                  {with(compute_engine, layer_step), Body{comm_only, nullptr},
                   with(sequential_engine, layer_step), with(overlap_engine, layer_step),
                   with(compute_engine, forward_step), paired});
      const double compute = t[0], comm = t[1], sequential = t[2], overlapped = t[3];
      const double paired_ms = t[5];
      const double compute_forward = std::min(t[4], compute);
      const double bound =
          std::max(comm / 2, compute_forward) + std::max(comm / 2, compute - compute_forward);
      if (rank == 0) {
        std::printf("%10.3f %7lld %12.1f %10.1f %15.1f %12.1f %8.3f %10.1f %9.3f %11.1f %8.3f\n",
                    gbps, static_cast<long long>(chunks), compute, comm, sequential, overlapped,
                    overlapped / std::max(comm, compute), bound, overlapped / bound, paired_ms,
                    paired_ms / std::max(comm, compute));
        std::fflush(stdout);
      }
    }
  }
  if (!trace_dir.empty()) {
    parallel::comm::LinkModel link;
    link.latency_us = latency_us;
    link.gbytes_per_s = trace_gbps > 0 ? trace_gbps : speeds.front();
    const int64_t chunks = trace_chunks > 0 ? trace_chunks : chunk_counts.back();
    const auto traced = std::make_shared<parallel::comm::TracingCommunicator>(
        std::make_shared<parallel::comm::DelayedLink>(free_link, link), "ep");
    const auto run = [&](const char* span, std::shared_ptr<const ExpertParallelMoe> e) {
      moe.set_routed_engine(std::move(e));
      layer_step();  // untraced warm-up of this engine
      MPI_Barrier(MPI_COMM_WORLD);
      Trace::enable(true);
      {
        TRIDENT_TRACE_SCOPE(span);
        models::MoeContext ctx;
        {
          TRIDENT_TRACE_SCOPE("moe forward");
          moe.forward(x, seq_layout, 0.0f, ctx);
        }
        TRIDENT_TRACE_SCOPE("moe backward");
        moe.backward_input(dout, ctx);
        moe.backward_weight(ctx);
      }
      Trace::enable(false);
      traced->drain();
    };
    run("layer overlap", engine(traced, chunks, true));
    run("layer no-overlap", engine(traced, 1, false));
    MPI_Barrier(MPI_COMM_WORLD);
    const std::string path = Trace::write(trace_dir, rank);
    if (rank == 0) {
      std::printf("# traces: %s (and the other ranks'): link %.3f GB/s, %lld chunks\n",
                  path.c_str(), link.gbytes_per_s, static_cast<long long>(chunks));
    }
  }
  return 0;
}
