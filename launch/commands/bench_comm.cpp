// `trident bench comm`: times every collective of the communication layer over a range of
// message sizes and prints a table in the style of nccl-tests: time (averaged over the
// iterations, maximum over ranks), algorithm bandwidth = size / time, bus bandwidth = algbw ×
// the collective's factor (all_reduce 2(n-1)/n; all_gather, reduce_scatter, all_to_all
// (n-1)/n; broadcast, sendrecv 1), and whether every received value was checked correct in
// every iteration (values encode sender, index and iteration).
#include <mpi.h>

#include <algorithm>
#include <cstdio>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "launch/cli.h"
#include "parallel/comm/delayed_link.h"
#include "parallel/context.h"
#include "parallel/mpi_session.h"
#include "runtime/config/config.h"
#include "runtime/core/error.h"
#ifdef TRIDENT_HAVE_NCCL
#include "parallel/comm/nccl_backend.h"
#include "parallel/gpu_binding.h"
#endif

namespace trident {
namespace {

using parallel::comm::Communicator;
using parallel::comm::ReduceOp;
using parallel::comm::WorkHandle;

enum class BenchOp { AllReduce, ReduceScatter, AllGather, AllToAll, Broadcast, SendRecv };

struct BenchOpSpec {
  BenchOp op;
  const char* name;
};
constexpr BenchOpSpec kBenchOps[] = {
    {BenchOp::AllReduce, "all_reduce"}, {BenchOp::ReduceScatter, "reduce_scatter"},
    {BenchOp::AllGather, "all_gather"}, {BenchOp::AllToAll, "all_to_all"},
    {BenchOp::Broadcast, "broadcast"},  {BenchOp::SendRecv, "sendrecv"},
};

double bus_factor(BenchOp op, int n) {
  switch (op) {
    case BenchOp::AllReduce: return 2.0 * (n - 1) / n;
    case BenchOp::ReduceScatter:
    case BenchOp::AllGather:
    case BenchOp::AllToAll: return static_cast<double>(n - 1) / n;
    case BenchOp::Broadcast:
    case BenchOp::SendRecv: return 1.0;
  }
  return 1.0;
}

DType parse_dtype(const std::string& name) {
  for (DType d : {DType::F32, DType::BF16, DType::I32, DType::I64}) {
    if (name == dtype_name(d)) return d;
  }
  TRIDENT_USER_FAIL("trident bench comm: --dtype '", name, "' is not one of f32, bf16, i32, i64");
}

// Small integers: exact in every dtype, and their sums over up to 8 ranks stay exact in bf16.
int64_t value(int rank, int64_t index, int iteration) {
  return (rank * 7 + index * 3 + iteration) % 16;
}

Tensor host_filled(int64_t count, DType dtype, int rank, int iteration, int64_t first_index) {
  Tensor host = Tensor::empty({count}, DType::F32);
  float* data = host.data<float>();
  for (int64_t i = 0; i < count; ++i) {
    data[i] = static_cast<float>(value(rank, first_index + i, iteration));
  }
  return host.to(dtype);
}

struct IterationBuffers {
  std::vector<Tensor> inputs;  // kept alive while the op runs
  Tensor output;               // what is checked afterwards
  std::vector<float> expected;
};

// Posts one iteration of `op` and returns its Works with what the output must contain.
std::vector<WorkHandle> post(Communicator& comm, BenchOp op, int64_t count, DType dtype,
                             int iteration, IterationBuffers& buffers) {
  const int n = comm.size();
  const int me = comm.rank();
  const Device device = comm.device();
  const int64_t block = count / n;
  buffers.expected.clear();
  switch (op) {
    case BenchOp::AllReduce: {
      buffers.output = host_filled(count, dtype, me, iteration, 0).on(device);
      for (int64_t i = 0; i < count; ++i) {
        int64_t sum = 0;
        for (int r = 0; r < n; ++r) sum += value(r, i, iteration);
        buffers.expected.push_back(static_cast<float>(sum));
      }
      return {comm.all_reduce(buffers.output, ReduceOp::Sum)};
    }
    case BenchOp::ReduceScatter: {
      buffers.inputs = {host_filled(count, dtype, me, iteration, 0).on(device)};
      buffers.output = Tensor::zeros({block}, dtype, device);
      for (int64_t j = 0; j < block; ++j) {
        int64_t sum = 0;
        for (int r = 0; r < n; ++r) sum += value(r, me * block + j, iteration);
        buffers.expected.push_back(static_cast<float>(sum));
      }
      return {comm.reduce_scatter(buffers.inputs[0], buffers.output, ReduceOp::Sum)};
    }
    case BenchOp::AllGather: {
      buffers.inputs = {host_filled(block, dtype, me, iteration, 0).on(device)};
      buffers.output = Tensor::zeros({block * n}, dtype, device);
      for (int r = 0; r < n; ++r) {
        for (int64_t j = 0; j < block; ++j) {
          buffers.expected.push_back(static_cast<float>(value(r, j, iteration)));
        }
      }
      return {comm.all_gather(buffers.inputs[0], buffers.output)};
    }
    case BenchOp::AllToAll: {
      // Block p of rank r's input starts at global index p·block; it lands at rank p.
      std::vector<int64_t> counts(static_cast<size_t>(n), block);
      buffers.inputs = {host_filled(block * n, dtype, me, iteration, 0).on(device)};
      buffers.output = Tensor::zeros({block * n}, dtype, device);
      for (int r = 0; r < n; ++r) {
        for (int64_t j = 0; j < block; ++j) {
          buffers.expected.push_back(static_cast<float>(value(r, me * block + j, iteration)));
        }
      }
      return {comm.all_to_all_v(buffers.inputs[0], counts, buffers.output, counts)};
    }
    case BenchOp::Broadcast: {
      const int root = iteration % n;
      buffers.output = host_filled(count, dtype, me, iteration, 0).on(device);
      for (int64_t i = 0; i < count; ++i) {
        buffers.expected.push_back(static_cast<float>(value(root, i, iteration)));
      }
      return {comm.broadcast(buffers.output, root)};
    }
    case BenchOp::SendRecv: {
      const int next = (me + 1) % n;
      const int prev = (me + n - 1) % n;
      buffers.inputs = {host_filled(count, dtype, me, iteration, 0).on(device)};
      buffers.output = Tensor::zeros({count}, dtype, device);
      for (int64_t i = 0; i < count; ++i) {
        buffers.expected.push_back(static_cast<float>(value(prev, i, iteration)));
      }
      return {comm.recv(buffers.output, prev, 0), comm.send(buffers.inputs[0], next, 0)};
    }
  }
  return {};
}

int64_t count_errors(const IterationBuffers& buffers) {
  const std::vector<float> got = buffers.output.to_vector();  // copied to the host if need be
  int64_t errors = got.size() == buffers.expected.size() ? 0 : 1;
  for (size_t i = 0; i < std::min(got.size(), buffers.expected.size()); ++i) {
    if (got[i] != buffers.expected[i]) ++errors;
  }
  return errors;
}

struct Measurement {
  double avg_us = 0;  // max over ranks of each rank's mean
  int64_t errors = 0;  // summed over ranks and iterations
};

Measurement measure(Communicator& comm, BenchOp op, int64_t count, DType dtype, int warmup,
                    int iters) {
  double total_seconds = 0;
  int64_t errors = 0;
  for (int it = 0; it < warmup + iters; ++it) {
    IterationBuffers buffers;
    MPI_Barrier(MPI_COMM_WORLD);  // start together so skew is not timed
    const double start = MPI_Wtime();
    for (const WorkHandle& work : post(comm, op, count, dtype, it, buffers)) work->wait();
    const double elapsed = MPI_Wtime() - start;
    if (it >= warmup) total_seconds += elapsed;
    errors += count_errors(buffers);
  }
  double mean = total_seconds / std::max(iters, 1);
  Measurement m;
  MPI_Allreduce(&mean, &m.avg_us, 1, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
  m.avg_us *= 1e6;
  MPI_Allreduce(&errors, &m.errors, 1, MPI_INT64_T, MPI_SUM, MPI_COMM_WORLD);
  return m;
}

std::vector<BenchOpSpec> parse_ops(const std::string& list) {
  std::vector<BenchOpSpec> ops;
  std::stringstream in(list);
  std::string name;
  while (std::getline(in, name, ',')) {
    const auto* found = std::find_if(std::begin(kBenchOps), std::end(kBenchOps),
                                     [&](const BenchOpSpec& s) { return name == s.name; });
    TRIDENT_USER_CHECK(found != std::end(kBenchOps), "trident bench comm: --ops entry '", name,
                       "' is not one of all_reduce, reduce_scatter, all_gather, all_to_all, "
                       "broadcast, sendrecv");
    ops.push_back(*found);
  }
  return ops;
}

}  // namespace
}  // namespace trident

TRIDENT_COMMAND(bench_comm, "bench comm",
                "communication benchmark (nccl-tests style table) for every collective") {
  using namespace trident;
  long long min_bytes = 1024;
  long long max_bytes = 16 << 20;
  long long iters = 20;
  long long warmup = 5;
  std::string ops_list = "all_reduce,reduce_scatter,all_gather,all_to_all,broadcast,sendrecv";
  std::string dtype_flag = "f32";
  std::string backend = "mpi";
  double latency_us = 0;
  double gbps = 0;
  double timeout_s = 120;
  launch::ArgParser parser("bench comm");
  parser.add_int("--min-bytes", &min_bytes, "smallest message in bytes (default 1024)");
  parser.add_int("--max-bytes", &max_bytes, "largest message in bytes, doubling (default 16 MiB)");
  parser.add_int("--iters", &iters, "timed iterations per size (default 20)");
  parser.add_int("--warmup", &warmup, "untimed iterations per size (default 5)");
  parser.add_string("--ops", &ops_list, "comma-separated: " + ops_list);
  parser.add_string("--dtype", &dtype_flag, "f32 | bf16 | i32 | i64 (default f32)");
  parser.add_string("--backend", &backend, "mpi (CPU tensors) | nccl (CUDA tensors, needs a GPU)");
  parser.add_double("--delay-latency-us", &latency_us, "DelayedLink latency per operation (µs)");
  parser.add_double("--delay-gbps", &gbps, "DelayedLink bandwidth in GB/s (0 = unlimited)");
  parser.add_double("--timeout", &timeout_s, "per-operation timeout in seconds (default 120)");
  if (!parser.parse(args)) return 0;
  TRIDENT_USER_CHECK(min_bytes > 0 && max_bytes >= min_bytes, "trident bench comm: need 0 < "
                     "--min-bytes <= --max-bytes, got ", min_bytes, " and ", max_bytes);
  TRIDENT_USER_CHECK(iters > 0 && warmup >= 0, "trident bench comm: --iters must be positive and "
                     "--warmup not negative");
  const std::vector<BenchOpSpec> ops = parse_ops(ops_list);
  const DType dtype = parse_dtype(dtype_flag);

  parallel::MpiSession session(nullptr, nullptr);
  TRIDENT_USER_CHECK(session.world_size() >= 2,
                     "trident bench comm: run under mpirun with at least 2 ranks");
  // Every rank of the job in one group (dp = ranks).
  config::TridentConfig layout = config::default_config();
  layout.mutable_parallel()->set_dp(session.world_size());
  layout.mutable_parallel()->set_comm_timeout_s(timeout_s);
  const auto context = parallel::make_parallel_context(layout);
  std::shared_ptr<Communicator> comm;
  if (backend == "mpi") {
    comm = context->shared_group(parallel::MeshAxis::World);
  } else if (backend == "nccl") {
#ifdef TRIDENT_HAVE_NCCL
    parallel::bind_local_gpu(*context->mesh());
    parallel::comm::CommOptions options;
    options.timeout_seconds = timeout_s;
    comm =
        std::make_shared<parallel::comm::NcclBackend>(context->mesh()->world(), nullptr, options);
#else
    TRIDENT_USER_FAIL(
        "trident bench comm: --backend nccl runs on GPUs and needs a build with "
        "the CUDA toolkit");
#endif
  } else {
    TRIDENT_USER_FAIL("trident bench comm: --backend '", backend, "' is not mpi or nccl");
  }
  if (latency_us > 0 || gbps > 0) {
    parallel::comm::LinkModel link;
    link.latency_us = latency_us;
    link.gbytes_per_s = gbps;
    comm = std::make_shared<parallel::comm::DelayedLink>(comm, link);
  }

  const int n = comm->size();
  const bool root = comm->rank() == 0;
  const auto element = static_cast<int64_t>(dtype_size(dtype));
  if (root) {
    std::printf("# trident bench comm: %d ranks, backend %s, dtype %s, %lld+%lld iterations%s\n",
                n, backend.c_str(), dtype_name(dtype), warmup, iters,
                latency_us > 0 || gbps > 0 ? ", DelayedLink" : "");
    if (latency_us > 0 || gbps > 0) {
      std::printf("# DelayedLink: latency %.1f us, bandwidth %.3f GB/s\n", latency_us, gbps);
    }
    std::printf("# time: mean over iterations, max over ranks; GB/s = 1e9 bytes/s\n");
    std::printf("%-15s %12s %12s %6s %12s %12s %12s %9s\n", "op", "size(B)", "count", "type",
                "time(us)", "algbw(GB/s)", "busbw(GB/s)", "verified");
  }
  bool all_verified = true;
  for (const BenchOpSpec& spec : ops) {
    for (long long bytes = min_bytes; bytes <= max_bytes; bytes *= 2) {
      // Equal blocks per rank: round the element count down to a multiple of n.
      const int64_t count = std::max<int64_t>(bytes / element / n, 1) * n;
      const Measurement m = measure(*comm, spec.op, count, dtype, static_cast<int>(warmup),
                                    static_cast<int>(iters));
      const double size = static_cast<double>(count * element);
      const double algbw = size / (m.avg_us * 1e-6) / 1e9;
      all_verified = all_verified && m.errors == 0;
      if (root) {
        std::printf("%-15s %12lld %12lld %6s %12.1f %12.3f %12.3f %9s\n", spec.name,
                    static_cast<long long>(count * element), static_cast<long long>(count),
                    dtype_name(dtype), m.avg_us, algbw, algbw * bus_factor(spec.op, n),
                    m.errors == 0 ? "ok" : "WRONG");
        std::fflush(stdout);
      }
    }
  }
  if (root && !all_verified) std::printf("# some received data was WRONG\n");
  return all_verified ? 0 : 1;
}
