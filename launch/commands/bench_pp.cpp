// `trident bench pp`: the pipeline executor's measured step time beside the simulator's
// prediction, for every schedule, at pp = the number of MPI ranks.
//
// A stage is a stand-in, not the model: `--layers` fp32 GEMMs of [tokens, hidden] x
// [hidden, hidden] (the CPU backend, OpenBLAS), so F, B and W are each `--layers` GEMMs of the same
// size. First the hop: half a ping-pong of one activation over the link, quiet and while the
// other ranks compute (a waiting rank then wakes late). Per schedule:
//   1. calibrate F, B and W alone (the ranks take turns while the others sleep in a barrier;
//      wall time of a core to itself; median, --best: fastest, over repeats, mean over ranks);
//   2. run the executor over a DelayedLink (--latency-us, --gbps): --warmup untimed steps,
//      then --steps timed steps, of which the median (--best: fastest) step time (the
//      slowest rank's; each step starts at a barrier). Each step also gives its in-step costs:
//      the mean CPU time of the computing thread per F, B and W over every rank's actions;
//   3. simulate() the same schedule twice: the step's own in-step costs, the hop measured on
//      busy cores and the machine's cores shared by the ranks' compute (--cores; processor
//      sharing); and alone costs, the modelled hop and a core per rank. The first is done for
//      every timed step too, giving the spread of measured / predicted, and again with the
//      costs of the step before each (a prediction from costs the step did not produce);
//   4. print measured, both predictions, their ratios and bubble fractions, and a replay of
//      the simulator's rules with each action's duration in the measured step (what the
//      executor adds beyond compute and hops). --trace writes the step's timelines.
// The core model holds only with single-threaded GEMMs: OMP_NUM_THREADS=1 is required.
// On CPU an overlapped F&B pair (DualPipeV) runs one after the other, so it is simulated at
// F + B + W (no overlap gain).
#include <cblas.h>
#include <mpi.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "launch/cli.h"
#include "launch/commands/bench_pp_hop.h"
#include "launch/commands/bench_pp_stage.h"
#include "parallel/comm/delayed_link.h"
#include "parallel/context.h"
#include "parallel/mpi_session.h"
#include "parallel/pp/executor.h"
#include "parallel/pp/schedule.h"
#include "parallel/pp/simulate.h"
#include "runtime/config/config.h"
#include "runtime/core/error.h"

namespace trident {
namespace {

using namespace bench_pp;

// The 1-minute load average (other work on the machine), or -1 where unknown.
double load_average() {
  std::ifstream in("/proc/loadavg");
  double load = -1;
  in >> load;
  return load;
}

// Every rank's compute durations of one step, in list order (0 for sends and receives).
std::vector<std::vector<double>> gather_durations(const parallel::pp::Schedule& schedule,
                                                  const parallel::pp::ExecutorStats& stats) {
  const int ranks = schedule.layout.ranks;
  std::vector<double> mine;
  for (const parallel::pp::ActionTiming& t : stats.timeline) {
    mine.push_back(parallel::pp::is_compute(t.action.kind) ? t.end_s - t.start_s : 0.0);
  }
  std::vector<int> counts(ranks), offsets(ranks);
  int total = 0;
  for (int r = 0; r < ranks; ++r) {
    counts[r] = static_cast<int>(schedule.ranks[r].size());
    offsets[r] = total;
    total += counts[r];
  }
  std::vector<double> all(total);
  MPI_Allgatherv(mine.data(), static_cast<int>(mine.size()), MPI_DOUBLE, all.data(), counts.data(),
                 offsets.data(), MPI_DOUBLE, MPI_COMM_WORLD);
  std::vector<std::vector<double>> out(ranks);
  for (int r = 0; r < ranks; ++r) {
    out[r].assign(all.begin() + offsets[r], all.begin() + offsets[r] + counts[r]);
  }
  return out;
}

// The simulator's rules (each rank in list order, a send arrives `hop` seconds after it is
// issued, a receive ends when its message has arrived) with every compute action taking the
// duration it took in the measured step: what the step would have cost had the executor added
// nothing beyond the compute and the hops. Returns the step time.
double replay_step(const parallel::pp::Schedule& schedule,
                   const std::vector<std::vector<double>>& cost, double hop) {
  const int ranks = schedule.layout.ranks;
  struct Channel {
    int from, to;
    bool gradient;
    auto operator<=>(const Channel&) const = default;
  };
  std::map<Channel, std::vector<double>> arrivals;
  std::map<Channel, size_t> consumed;
  std::vector<size_t> pc(ranks, 0);
  std::vector<double> clock(ranks, 0.0);
  for (bool moved = true; moved;) {
    moved = false;
    for (int r = 0; r < ranks; ++r) {
      const std::vector<parallel::pp::Action>& list = schedule.ranks[r];
      while (pc[r] < list.size()) {
        const parallel::pp::Action& a = list[pc[r]];
        const bool gradient = a.kind == parallel::pp::ActionKind::SendGrad ||
                              a.kind == parallel::pp::ActionKind::RecvGrad;
        if (parallel::pp::is_send(a.kind)) {
          arrivals[{r, a.peer, gradient}].push_back(clock[r] + hop);
        } else if (parallel::pp::is_recv(a.kind)) {
          const Channel c{a.peer, r, gradient};
          std::vector<double>& queue = arrivals[c];
          if (consumed[c] >= queue.size()) break;
          clock[r] = std::max(clock[r], queue[consumed[c]++]);
        } else {
          clock[r] += cost[r][pc[r]];
        }
        ++pc[r];
        moved = true;
      }
    }
  }
  double step = 0;
  for (int r = 0; r < ranks; ++r) {
    TRIDENT_CHECK(pc[r] == schedule.ranks[r].size(), "bench pp: replay stuck at rank ", r);
    step = std::max(step, clock[r]);
  }
  return step;
}

// CPU time of this process, all its threads (compute, MPI progress, arrival probe).
double process_cpu_seconds() {
  timespec t{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
  return static_cast<double>(t.tv_sec) + 1e-9 * static_cast<double>(t.tv_nsec);
}

// CPU time of each thread of this process so far (/proc/self/task/*/schedstat, ns
// resolution), keyed by "<name>:<tid>". The MPI progress thread and the arrival probe are
// named, so their share of the step's CPU can be told apart from the executor's.
std::map<std::string, double> thread_cpu_table() {
  std::map<std::string, double> out;
  std::error_code error;
  for (const auto& entry : std::filesystem::directory_iterator("/proc/self/task", error)) {
    std::ifstream stat(entry.path() / "schedstat");
    std::ifstream comm(entry.path() / "comm");
    double ns = 0;
    std::string name;
    if (!(stat >> ns) || !std::getline(comm, name)) continue;
    out[name + ":" + entry.path().filename().string()] = ns * 1e-9;
  }
  return out;
}

// Machine-wide CPU time from /proc/stat (every core, in seconds): time the host took from this
// VM (steal) and everything else. Zero where unreadable.
struct MachineTime {
  double steal = 0;
  double total = 0;
};
MachineTime machine_time() {
  std::ifstream in("/proc/stat");
  std::string cpu;
  in >> cpu;
  MachineTime t;
  // user nice system idle iowait irq softirq steal (USER_HZ ticks)
  for (int field = 0; field < 8; ++field) {
    double ticks = 0;
    if (!(in >> ticks)) return MachineTime{};
    t.total += ticks;
    if (field == 7) t.steal = ticks;
  }
  const double hz = static_cast<double>(sysconf(_SC_CLK_TCK));
  t.steal /= hz;
  t.total /= hz;
  return t;
}

struct Measured {
  double step = 0;       // median over steps of the slowest rank's step time
  parallel::pp::StageCosts costs;  // of the median step: its in-step costs (no hop)
  size_t chosen = 0;     // the median step's index in step_times
  // Every timed step's time and in-step costs, for the spread of the ratio, and the in-step
  // costs of the step before it (a warm-up step for the first; its own without warm-up): a
  // prediction from costs the predicted step did not produce.
  std::vector<double> step_times;
  std::vector<parallel::pp::StageCosts> step_costs;
  std::vector<parallel::pp::StageCosts> previous_costs;
  double bubble_fraction = 0;  // of the median step: 1 - sum(compute) / (ranks x step)
  double recv_wait = 0;        // of the median step: mean over ranks of the receive waits
  // Of the median step: the CPU time all ranks' processes used over the step's wall time, the
  // cores the job really had. Below --cores in a compute-bound phase means other work took
  // the rest.
  double cores_used = 0;
  // Of the median step: the share of the machine's core time the host's hypervisor took
  // (steal), from /proc/stat at the step's start and end on rank 0 (10 ms ticks).
  double steal_fraction = 0;
  std::vector<parallel::pp::ExecutorStats> runs;  // this rank's stats of the chosen step only
  // Of the chosen step, this rank's: when run() started (steady clock, shared by the
  // processes of one machine), and the CPU time of its compute thread and of the process.
  double run_start = 0;
  double main_thread_cpu = 0;
  double process_cpu = 0;
  std::map<std::string, double> thread_cpu;  // per thread, over the chosen step
};

Measured measure(const parallel::pp::Schedule& schedule, parallel::pp::PipelineExecutor& executor,
                 int rank, const StageShape& shape, int steps, int warmup, bool best) {
  const int ranks = schedule.layout.ranks;
  std::vector<double> step_times;
  std::vector<double> bubbles;
  std::vector<double> waits;
  std::vector<double> cores_used;
  std::vector<double> steals;
  parallel::pp::StageCosts last_costs;
  std::vector<double> run_starts, thread_cpus, process_cpus;
  std::vector<std::map<std::string, double>> per_thread;
  Measured out;
  for (int i = 0; i < warmup + steps; ++i) {
    GemmStages stages(schedule.layout, rank, shape);
    MPI_Barrier(MPI_COMM_WORLD);
    const std::map<std::string, double> threads_before = thread_cpu_table();
    const double cpu_start = process_cpu_seconds();
    const double thread_start = thread_cpu_seconds();
    const MachineTime machine_start = machine_time();
    const double run_start = steady_seconds();
    parallel::pp::ExecutorStats stats = executor.run(stages);
    const double own_thread = thread_cpu_seconds() - thread_start;
    const double own_process = process_cpu_seconds() - cpu_start;
    std::map<std::string, double> threads = thread_cpu_table();
    for (auto& [name, seconds] : threads) {
      if (auto it = threads_before.find(name); it != threads_before.end()) seconds -= it->second;
    }
    const double cpu = sum_in_rank_order(own_process);
    const double step = max_over_ranks(stats.step_seconds);
    const double compute = sum_in_rank_order(stats.compute_seconds);
    const double wait = sum_in_rank_order(stats.recv_wait_seconds) / ranks;
    const parallel::pp::StageCosts costs = in_step_costs(stages.cpu());
    const MachineTime machine_end = machine_time();
    double steal =
        machine_end.total > machine_start.total
            ? (machine_end.steal - machine_start.steal) / (machine_end.total - machine_start.total)
            : 0.0;
    MPI_Bcast(&steal, 1, MPI_DOUBLE, 0, MPI_COMM_WORLD);
    const parallel::pp::StageCosts previous = i > 0 ? last_costs : costs;
    last_costs = costs;
    if (i < warmup) continue;
    steals.push_back(steal);
    out.step_costs.push_back(costs);
    out.previous_costs.push_back(previous);
    waits.push_back(wait);
    cores_used.push_back(cpu / step);
    step_times.push_back(step);
    bubbles.push_back(1.0 - compute / (ranks * step));
    run_starts.push_back(run_start);
    thread_cpus.push_back(own_thread);
    process_cpus.push_back(own_process);
    per_thread.push_back(std::move(threads));
    out.runs.push_back(std::move(stats));
  }
  // The bubble of the median (or fastest) step.
  std::vector<size_t> order(step_times.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::sort(order.begin(), order.end(),
            [&](size_t a, size_t b) { return step_times[a] < step_times[b]; });
  const size_t mid = order[best ? 0 : order.size() / 2];
  out.step = step_times[mid];
  out.costs = out.step_costs[mid];
  out.step_times = step_times;
  out.chosen = mid;
  out.bubble_fraction = bubbles[mid];
  out.recv_wait = waits[mid];
  out.cores_used = cores_used[mid];
  out.steal_fraction = steals[mid];
  out.run_start = run_starts[mid];
  out.main_thread_cpu = thread_cpus[mid];
  out.process_cpu = process_cpus[mid];
  out.thread_cpu = per_thread[mid];
  out.runs = {std::move(out.runs[mid])};
  return out;
}

// Appends this rank's chosen step to `<prefix>.rank<r>.csv`: one row per action (schedule,
// rank, kind, micro-batch, stage, start, end) with its start and end in ms since the earliest
// rank's run() start, then a `cpu` row with the step's CPU time of the executor thread and of the
// whole process (ms).
void write_trace(const std::string& prefix, const std::string& schedule_name, int rank,
                 const Measured& measured) {
  const double origin = -max_over_ranks(-measured.run_start);
  const double offset = measured.run_start - origin;
  const std::string path = prefix + ".rank" + std::to_string(rank) + ".csv";
  std::ofstream out(path, std::ios::app);
  TRIDENT_USER_CHECK(out.good(), "trident bench pp: cannot write --trace file ", path);
  for (const parallel::pp::ActionTiming& t : measured.runs.front().timeline) {
    out << schedule_name << ',' << rank << ',' << parallel::pp::action_kind_name(t.action.kind)
        << ',' << t.action.microbatch << ',' << t.action.stage << ',' << (offset + t.start_s) * 1e3
        << ',' << (offset + t.end_s) * 1e3 << '\n';
  }
  out << schedule_name << ',' << rank << ",cpu,0,0," << measured.main_thread_cpu * 1e3 << ','
      << measured.process_cpu * 1e3 << '\n';
  for (const auto& [name, seconds] : measured.thread_cpu) {
    out << schedule_name << ',' << rank << ",thread,0,0," << name << ',' << seconds * 1e3 << '\n';
  }
}

// Appends the simulated timeline to `<prefix>.sim.csv` in the same row format.
void write_simulated_trace(const std::string& prefix, const std::string& schedule_name,
                           const parallel::pp::SimulationResult& sim) {
  const std::string path = prefix + ".sim.csv";
  std::ofstream out(path, std::ios::app);
  TRIDENT_USER_CHECK(out.good(), "trident bench pp: cannot write --trace file ", path);
  for (const parallel::pp::TimelineEntry& t : sim.timeline) {
    out << schedule_name << ',' << t.rank << ',' << parallel::pp::action_kind_name(t.action.kind)
        << ',' << t.action.microbatch << ',' << t.action.stage << ',' << t.start * 1e3 << ','
        << t.end * 1e3 << '\n';
  }
}

std::vector<std::string> split_names(const std::string& list) {
  std::vector<std::string> out;
  std::stringstream in(list);
  for (std::string item; std::getline(in, item, ',');) {
    if (!item.empty()) out.push_back(item);
  }
  return out;
}

}  // namespace
}  // namespace trident

TRIDENT_COMMAND(bench_pp, "bench pp",
                "pipeline executor over a modelled link: measured vs simulated step time") {
  using namespace trident;
  StageShape shape;
  std::string schedules = "1f1b,interleaved,zb-h1,dualpipev";
  long long microbatches = 0;
  long long virtual_stages = 2;
  double latency_us = 100;
  double gbps = 10;
  long long steps = 5;
  long long warmup = 1;
  long long repeats = 5;
  long long cores = -1;
  bool best = false;
  std::string trace;

  long long tokens = shape.tokens, hidden = shape.hidden, layers = shape.layers;
  launch::ArgParser parser("bench pp");
  parser.add_string("--schedules", &schedules,
                    "comma-separated (1f1b,interleaved,zb-h1,dualpipev)");
  parser.add_int("--microbatches", &microbatches, "micro-batches per step (default 2 x pp)");
  parser.add_int("--virtual", &virtual_stages, "chunks per rank for 'interleaved' (default 2)");
  parser.add_int("--tokens", &tokens, "rows of a stage's GEMMs, one micro-batch (default 1024)");
  parser.add_int("--hidden", &hidden, "hidden size: GEMMs are [tokens,H]x[H,H] (default 512)");
  parser.add_int("--layers", &layers, "GEMMs per stage for each of F, B and W (default 2)");
  parser.add_double("--latency-us", &latency_us, "modelled p2p latency (default 100 us)");
  parser.add_double("--gbps", &gbps, "modelled p2p bandwidth, GB/s; 0 = unlimited (default 10)");
  parser.add_int("--steps", &steps, "timed steps per schedule (default 5)");
  parser.add_int("--warmup", &warmup, "untimed steps per schedule (default 1)");
  parser.add_int("--repeats", &repeats, "calibration repeats of F, B, W (default 5)");
  parser.add_int("--cores", &cores,
                 "cores the ranks share in the simulator's machine model; 0 = one per rank "
                 "(default: the machine's core count when ranks exceed it, else 0)");
  parser.add_bool("--best", &best,
                  "fastest repeat/step instead of the median (a machine shared with other work)");
  parser.add_string("--trace", &trace,
                    "write each rank's timeline of the chosen step to TRACE.rank<r>.csv");
  if (!parser.parse(args)) return 0;
  TRIDENT_USER_CHECK(tokens > 0 && hidden > 0 && layers > 0,
                     "trident bench pp: --tokens, --hidden and --layers must be positive");
  TRIDENT_USER_CHECK(steps > 0 && warmup >= 0 && repeats > 0,
                     "trident bench pp: --steps and --repeats must be positive, --warmup not "
                     "negative");
  const char* omp_threads = std::getenv("OMP_NUM_THREADS");
  TRIDENT_USER_CHECK(omp_threads != nullptr && std::string(omp_threads) == "1",
                     "trident bench pp: set OMP_NUM_THREADS=1 (got '",
                     omp_threads ? omp_threads : "unset",
                     "'): the core model assumes each rank's GEMM runs on one thread");
  shape.tokens = tokens;
  shape.hidden = hidden;
  shape.layers = layers;

  // One BLAS thread per rank: the ranks themselves already oversubscribe the cores.
  openblas_set_num_threads(1);
  TRIDENT_CHECK(openblas_get_num_threads() == 1, "bench pp: OpenBLAS would not go single-threaded");
  parallel::MpiSession session(nullptr, nullptr);
  TRIDENT_USER_CHECK(session.world_size() >= 2,
                     "trident bench pp: run under mpirun with at least 2 ranks (pp = "
                     "the number of ranks), got ",
                     session.world_size());
  // Every rank of the job is one pipeline (pp = ranks).
  config::TridentConfig layout = config::default_config();
  layout.mutable_parallel()->set_pp(session.world_size());
  const auto context = parallel::make_parallel_context(layout);
  const std::shared_ptr<parallel::comm::Communicator> mpi =
      context->shared_group(parallel::MeshAxis::Pp);
  const int rank = mpi->rank();
  const int pp = mpi->size();
  if (microbatches <= 0) microbatches = 2 * pp;
  const int hardware_cores = static_cast<int>(std::thread::hardware_concurrency());
  if (cores < 0) cores = pp > hardware_cores && hardware_cores > 0 ? hardware_cores : 0;
  parallel::pp::MachineModel machine;
  machine.cores = static_cast<int>(cores);
  parallel::comm::LinkModel link_model;
  link_model.latency_us = latency_us;
  link_model.gbytes_per_s = gbps;
  auto link = std::make_shared<parallel::comm::DelayedLink>(mpi, link_model);
  const double activation_bytes = static_cast<double>(shape.tokens * shape.hidden) * 4.0;
  const double p2p_seconds =
      std::chrono::duration<double>(link_model.transfer_time(activation_bytes)).count() +
      latency_us * 1e-6;

  const double hop_seconds =
      measured_hop_seconds(*link, shape, static_cast<int>(repeats) * 4, best);
  const double busy_hop_seconds =
      pp > 2 ? measured_busy_hop_seconds(*link, shape, static_cast<int>(repeats) * 4) : hop_seconds;
  if (rank == 0) {
    std::printf(
        "bench pp: pp=%d ranks, %lld micro-batches, stage = %lld fp32 GEMMs "
        "[%lld,%lld]x[%lld,%lld] per F/B/W (a stand-in, not the model), OMP_NUM_THREADS=1\n"
        "link: DelayedLink %.1f us + %.2f GB/s -> p2p %.1f us per %.0f KiB activation\n"
        "measured hop over that link (half ping-pong, %s): %.1f us quiet, %.1f us (median) "
        "with the other ranks computing\n"
        "machine: %d hardware cores; core model --cores %lld%s\n"
        "costs: each rank alone on a core (ranks take turns), %s of %lld, mean over ranks\n"
        "in-step: mean CPU time of the computing thread per action in that step (every rank)\n"
        "sim.cores: in-step costs, the hop measured on busy cores, compute sharing the cores;\n"
        "  range: lowest-highest ratio of every timed step to its own sim.cores\n"
        "prev: the same with the in-step costs of the step before (costs the predicted step "
        "did not produce); prev.range over every timed step\n"
        "sim.free: the alone-on-a-core costs with a core per rank (no sharing)\n"
        "replay: the simulator's rules with each action's own duration in the measured step\n"
        "cores: CPU time of all ranks over the measured step's wall time (cores the job had)\n"
        "steps: %s of %lld after %lld warm-up; load average at start: %.2f\n",
        pp, microbatches, layers, tokens, hidden, hidden, hidden, latency_us, gbps,
        p2p_seconds * 1e6, activation_bytes / 1024, best ? "fastest" : "median", hop_seconds * 1e6,
        busy_hop_seconds * 1e6, hardware_cores, cores, cores == 0 ? " (one per rank)" : "",
        best ? "fastest" : "median", repeats, best ? "fastest" : "median", steps, warmup,
        load_average());
    std::printf(
        "%-14s %6s %6s %6s %17s %9s %10s %6s %11s %6s %11s %9s %6s %8s %8s %10s %6s %8s %6s %6s\n",
        "schedule", "F(ms)", "B(ms)", "W(ms)", "in-step F/B/W cpu", "meas(ms)", "sim.cores",
        "ratio", "range", "prev", "prev.range", "sim.free", "ratio", "bub.meas", "bub.sim",
        "replay(ms)", "ratio", "wait(ms)", "cores", "steal");
  }
  for (const std::string& name : split_names(schedules)) {
    parallel::pp::ScheduleRequest request;
    request.name = name;
    request.pp = pp;
    request.microbatches = static_cast<int>(
        std::max<long long>(microbatches, parallel::pp::min_microbatches(name, pp)));
    request.virtual_stages = name == "interleaved" ? static_cast<int>(virtual_stages) : 1;
    const parallel::pp::Schedule schedule = parallel::pp::make_schedule(request);

    parallel::pp::StageCosts costs =
        calibrate(schedule.layout, rank, shape, static_cast<int>(repeats), best);
    costs.p2p_latency = p2p_seconds;
    parallel::pp::PipelineExecutor executor(schedule, link);
    const Measured measured = measure(schedule, executor, rank, shape, static_cast<int>(steps),
                                      static_cast<int>(warmup), best);
    // Each step against its own prediction: in-step costs and what a hop really costs here
    // (the modelled link, MPI and the wake-ups on busy cores).
    auto predict = [&](parallel::pp::StageCosts in_step) {
      in_step.p2p_latency = busy_hop_seconds;
      return parallel::pp::simulate(schedule, in_step, machine);
    };
    double lowest_ratio = 1e30, highest_ratio = 0;
    double lowest_previous = 1e30, highest_previous = 0;
    for (size_t i = 0; i < measured.step_times.size(); ++i) {
      const double ratio = measured.step_times[i] / predict(measured.step_costs[i]).step_time;
      lowest_ratio = std::min(lowest_ratio, ratio);
      highest_ratio = std::max(highest_ratio, ratio);
      const double previous =
          measured.step_times[i] / predict(measured.previous_costs[i]).step_time;
      lowest_previous = std::min(lowest_previous, previous);
      highest_previous = std::max(highest_previous, previous);
    }
    const double chosen_previous =
        measured.step / predict(measured.previous_costs[measured.chosen]).step_time;
    const parallel::pp::StageCosts& shared_costs = measured.costs;
    if (!trace.empty()) write_trace(trace, name, rank, measured);
    const parallel::pp::SimulationResult sim = predict(shared_costs);
    const parallel::pp::SimulationResult sim_free = parallel::pp::simulate(schedule, costs);
    if (!trace.empty() && rank == 0) write_simulated_trace(trace, name, sim);
    const double replayed =
        replay_step(schedule, gather_durations(schedule, measured.runs.front()), hop_seconds);
    if (rank == 0) {
      // Pieces with a '/' or '-' inside are formatted first, so each column stays one word.
      char in_step[64], range[64], previous_range[64];
      std::snprintf(in_step, sizeof in_step, "%.2f/%.2f/%.2f", shared_costs.forward * 1e3,
                    shared_costs.backward_input * 1e3, shared_costs.backward_weight * 1e3);
      std::snprintf(range, sizeof range, "%.3f-%.3f", lowest_ratio, highest_ratio);
      std::snprintf(previous_range, sizeof previous_range, "%.3f-%.3f", lowest_previous,
                    highest_previous);
      std::printf(
          "%-14s %6.2f %6.2f %6.2f %17s %9.1f %10.1f %6.3f %11s %6.3f %11s %9.1f %6.3f %8.3f "
          "%8.3f %10.1f "
          "%6.3f %8.1f %6.2f %6.3f\n",
          (name + (name == "interleaved" ? "/v" + std::to_string(virtual_stages) : "")).c_str(),
          costs.forward * 1e3, costs.backward_input * 1e3, costs.backward_weight * 1e3, in_step,
          measured.step * 1e3, sim.step_time * 1e3, measured.step / sim.step_time, range,
          chosen_previous, previous_range, sim_free.step_time * 1e3,
          measured.step / sim_free.step_time, measured.bubble_fraction, sim.bubble_fraction,
          replayed * 1e3, measured.step / replayed, measured.recv_wait * 1e3, measured.cores_used,
          measured.steal_fraction);
      std::fflush(stdout);
    }
  }
  if (rank == 0) std::printf("load average at end: %.2f\n", load_average());
  return 0;
}
