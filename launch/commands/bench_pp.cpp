// `trident bench pp`: the pipeline executor's measured step time beside the simulator's
// prediction, for every schedule, at pp = the number of MPI ranks.
//
// A stage is a stand-in, not the model: `--layers` fp32 GEMMs of [tokens, hidden] x
// [hidden, hidden] (ops/cpu, OpenBLAS), so F, B and W are each `--layers` GEMMs of the same
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
//      every timed step too, giving the spread of measured / predicted;
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
#include <cmath>
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
#include "ops/cpu/linear.h"
#include "parallel/comm/delayed_link.h"
#include "parallel/comm/mpi_backend.h"
#include "parallel/mpi_session.h"
#include "parallel/pp/executor.h"
#include "parallel/pp/schedule.h"
#include "parallel/pp/simulate.h"
#include "runtime/core/error.h"
#include "runtime/core/rng.h"

namespace trident {
namespace {

using Clock = std::chrono::steady_clock;

// The default stage runs ~14 ms per F, B or W here: long against the 1-3 ms a blocked rank
// waits for a core on busy shared cores (docs/pipeline.md).
struct StageShape {
  int64_t tokens = 1024;
  int64_t hidden = 512;
  int64_t layers = 2;
};

Tensor random_tensor(int64_t rows, int64_t cols, uint64_t seed, uint64_t stream, float scale) {
  Tensor t = Tensor::empty({rows, cols});
  float* data = t.data<float>();
  const CounterRng rng(seed, stream);
  for (int64_t i = 0; i < rows * cols; ++i) data[i] = scale * rng.normal(static_cast<uint64_t>(i));
  return t;
}

// CPU time of the calling thread only (the executor's: compute and communication calls).
double thread_cpu_seconds() {
  timespec t{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
  return static_cast<double>(t.tv_sec) + 1e-9 * static_cast<double>(t.tv_nsec);
}

// Durations of F, B and W, in the order they ran (seconds, on whichever clock the caller
// says).
struct ActionSamples {
  std::vector<double> forward, backward_input, backward_weight;
};

// The stand-in stage: a chain of linear layers. F stashes each layer's input, B stashes each
// layer's output gradient, W turns the two into weight gradients and frees both.
class GemmStages final : public pp::StageCompute {
 public:
  GemmStages(const pp::StageLayout& layout, int rank, const StageShape& shape)
      : shape_(shape), last_stage_(layout.num_stages() - 1) {
    const float scale = 1.0f / std::sqrt(static_cast<float>(shape.hidden));
    for (int c = 0; c < layout.chunks; ++c) {
      const int s = layout.stage_of(rank, c);
      for (int64_t l = 0; l < shape.layers; ++l) {
        weights_[s].push_back(random_tensor(shape.hidden, shape.hidden, 7, s * 100 + l, scale));
        grads_[s].push_back(Tensor::zeros({shape.hidden, shape.hidden}));
      }
    }
    first_input_ = random_tensor(shape.tokens, shape.hidden, 11, 0, 1.0f);
  }

  std::vector<int64_t> activation_shape(int, int) const override {
    return {shape_.tokens, shape_.hidden};
  }

  // CPU seconds of the computing thread in each action this object ran.
  const ActionSamples& cpu() const { return cpu_; }

  Tensor forward(int m, int s, const Tensor& input) override {
    const double start = thread_cpu_seconds();
    std::vector<Tensor>& stash = inputs_[{m, s}];
    Tensor x = s == 0 ? first_input_ : input;
    for (const Tensor& w : weights_.at(s)) {
      stash.push_back(x);
      Tensor y = Tensor::empty({shape_.tokens, shape_.hidden});
      ops::cpu::linear_forward(x, w, y);
      x = y;
    }
    if (s == last_stage_) last_outputs_[m] = x;
    cpu_.forward.push_back(thread_cpu_seconds() - start);
    return x;
  }

  Tensor backward_input(int m, int s, const Tensor& output_grad) override {
    const double start = thread_cpu_seconds();
    Tensor g = s == last_stage_ ? take(last_outputs_, m) : output_grad;
    std::vector<Tensor>& stash = output_grads_[{m, s}];
    const std::vector<Tensor>& w = weights_.at(s);
    stash.resize(w.size());
    for (size_t l = w.size(); l-- > 0;) {
      stash[l] = g;
      Tensor dx = Tensor::empty({shape_.tokens, shape_.hidden});
      ops::cpu::linear_backward_input(g, w[l], dx);
      g = dx;
    }
    cpu_.backward_input.push_back(thread_cpu_seconds() - start);
    return s == 0 ? Tensor() : g;
  }

  void backward_weight(int m, int s) override {
    const double start = thread_cpu_seconds();
    const std::vector<Tensor> x = take(inputs_, std::make_pair(m, s));
    const std::vector<Tensor> dy = take(output_grads_, std::make_pair(m, s));
    std::vector<Tensor>& grads = grads_.at(s);
    for (size_t l = 0; l < grads.size(); ++l)
      ops::cpu::linear_backward_weight(dy[l], x[l], grads[l]);
    cpu_.backward_weight.push_back(thread_cpu_seconds() - start);
  }

 private:
  template <typename Map, typename Key>
  static typename Map::mapped_type take(Map& map, const Key& key) {
    auto it = map.find(key);
    TRIDENT_CHECK(it != map.end(), "bench pp: missing stash");
    typename Map::mapped_type value = std::move(it->second);
    map.erase(it);
    return value;
  }

  StageShape shape_;
  int last_stage_;
  Tensor first_input_;
  std::map<int, std::vector<Tensor>> weights_;
  std::map<int, std::vector<Tensor>> grads_;
  std::map<std::pair<int, int>, std::vector<Tensor>> inputs_;
  std::map<std::pair<int, int>, std::vector<Tensor>> output_grads_;
  std::map<int, Tensor> last_outputs_;
  ActionSamples cpu_;
};

double max_over_ranks(double value) {
  double out = 0;
  MPI_Allreduce(&value, &out, 1, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
  return out;
}

double sum_over_ranks(double value) {
  double out = 0;
  MPI_Allreduce(&value, &out, 1, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD);
  return out;
}

// The median, or with `best` the minimum: on a machine shared with other work the fastest
// repeat is the one least disturbed by it.
double typical(std::vector<double> values, bool best) {
  std::sort(values.begin(), values.end());
  return best ? values.front() : values[values.size() / 2];
}

double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

// A barrier the waiting ranks sleep through: MPI_Barrier polls, and a polling rank would take
// a core from the one being timed.
void sleeping_barrier() {
  MPI_Request request;
  MPI_Ibarrier(MPI_COMM_WORLD, &request);
  for (int done = 0;;) {
    MPI_Test(&request, &done, MPI_STATUS_IGNORE);
    if (done) return;
    std::this_thread::sleep_for(std::chrono::microseconds(500));
  }
}

// Wall time on the steady clock.
double steady_seconds() {
  return std::chrono::duration<double>(Clock::now().time_since_epoch()).count();
}

// Durations of F, B and W of the rank's first stage, `repeats` times after one warm-up, read
// on `clock` (seconds).
ActionSamples time_actions(const pp::StageLayout& layout, int rank, const StageShape& shape,
                           int repeats, double (*clock)()) {
  GemmStages stages(layout, rank, shape);
  const int s = layout.stage_of(rank, 0);
  const Tensor input = random_tensor(shape.tokens, shape.hidden, 13, 0, 1.0f);
  // The last stage starts from its own output; others take the given gradient.
  const Tensor grad = random_tensor(shape.tokens, shape.hidden, 17, 0, 1.0f);
  ActionSamples samples;
  for (int i = 0; i < repeats + 1; ++i) {
    double t = clock();
    stages.forward(i, s, input);
    const double tf = clock() - t;
    t = clock();
    stages.backward_input(i, s, grad);
    const double tb = clock() - t;
    t = clock();
    stages.backward_weight(i, s);
    const double tw = clock() - t;
    if (i == 0) continue;  // warm-up
    samples.forward.push_back(tf);
    samples.backward_input.push_back(tb);
    samples.backward_weight.push_back(tw);
  }
  return samples;
}

// Median (--best: fastest) of each action on every rank, mean over ranks (collective; a rank
// without samples contributes 0).
pp::StageCosts mean_costs(const ActionSamples& samples, const pp::StageLayout& layout,
                          bool best) {
  const double ranks = layout.ranks;
  pp::StageCosts costs;
  costs.forward = sum_over_ranks(typical(samples.forward, best)) / ranks;
  costs.backward_input = sum_over_ranks(typical(samples.backward_input, best)) / ranks;
  costs.backward_weight = sum_over_ranks(typical(samples.backward_weight, best)) / ranks;
  return costs;
}

// F, B and W of one micro-batch through the rank's first stage, timed in a quiet phase: the
// ranks take turns, the others sleeping in a barrier, so each rank has a core to itself.
// Median (--best: fastest) over `repeats`, mean over ranks.
pp::StageCosts calibrate(const pp::StageLayout& layout, int rank, const StageShape& shape,
                         int repeats, bool best) {
  ActionSamples samples;
  for (int turn = 0; turn < layout.ranks; ++turn) {
    sleeping_barrier();
    if (turn == rank) samples = time_actions(layout, rank, shape, repeats, steady_seconds);
  }
  sleeping_barrier();
  return mean_costs(samples, layout, best);
}

// F, B and W as the executor ran them in one step: the mean CPU seconds of the computing
// thread over that step's actions of each kind on every rank (collective). CPU time, not wall
// time: how a shared core stretches wall time is the simulator's business (its core model);
// the CPU time is the work the core model divides among the ranks, with what sharing caches
// and the memory bus, being preempted and touching fresh buffers cost in a real step. Two
// other sources were measured and left: a separate calibration (every rank running the same
// GEMMs in a loop) missed the step's own by -10 % to +30 % from schedule to schedule, a loop
// interleaving the ranks' work differently from a step; and earlier profiling steps of the
// same schedule missed by up to 15 %, this machine being a VM whose speed drifts from second
// to second.
pp::StageCosts in_step_costs(const ActionSamples& cpu) {
  const std::vector<double>* kinds[3] = {&cpu.forward, &cpu.backward_input, &cpu.backward_weight};
  double mean[3];
  for (int k = 0; k < 3; ++k) {
    double sum = 0;
    for (double seconds : *kinds[k]) sum += seconds;
    mean[k] = sum_over_ranks(sum) / sum_over_ranks(static_cast<double>(kinds[k]->size()));
  }
  pp::StageCosts costs;
  costs.forward = mean[0];
  costs.backward_input = mean[1];
  costs.backward_weight = mean[2];
  return costs;
}

// The 1-minute load average (other work on the machine), or -1 where unknown.
double load_average() {
  std::ifstream in("/proc/loadavg");
  double load = -1;
  in >> load;
  return load;
}

// One activation's hop between neighbouring ranks as the executor sees it (the modelled
// delay plus MPI, progress threads and the OS scheduler): half a ping-pong over the link,
// pairs (0,1), (2,3), ... at once, median over `repeats`, the slowest pair.
double measured_hop_seconds(parallel::Communicator& link, const StageShape& shape, int repeats,
                            bool best) {
  const int rank = link.rank();
  const int peer = rank ^ 1;
  std::vector<double> hops;
  if (peer < link.size()) {
    Tensor buffer = Tensor::zeros({shape.tokens, shape.hidden});
    for (int i = 0; i < repeats + 1; ++i) {
      const Clock::time_point start = Clock::now();
      if (rank % 2 == 0) {
        link.send(buffer, peer, 1)->wait();
        link.recv(buffer, peer, 2)->wait();
      } else {
        link.recv(buffer, peer, 1)->wait();
        link.send(buffer, peer, 2)->wait();
      }
      if (i > 0) hops.push_back(seconds_since(start) / 2);
    }
  }
  return max_over_ranks(hops.empty() ? 0.0 : typical(hops, best));
}

// The same hop while the cores are busy, as they are during a step: pairs (0,1), (2,3), ...
// take turns at the ping-pong while every other rank runs GEMMs back to back. A rank blocked
// in a receive then has to win a core back from computing ranks to see its data (its MPI
// progress thread to test, then the executor thread to wake), which a quiet machine hides.
// With no rank left to compute (pp = 2) this is the quiet hop. The median, also with --best:
// this is a distribution of wake-up delays whose fastest sample is the exception.
double measured_busy_hop_seconds(parallel::Communicator& link, const StageShape& shape,
                                 int repeats) {
  const int rank = link.rank();
  const int ranks = link.size();
  const Tensor x = random_tensor(shape.tokens, shape.hidden, 19, 0, 1.0f);
  const Tensor w = random_tensor(shape.hidden, shape.hidden, 23, 0, 0.05f);
  Tensor y = Tensor::empty({shape.tokens, shape.hidden});
  Tensor buffer = Tensor::zeros({shape.tokens, shape.hidden});
  std::vector<double> hops;
  for (int turn = 0; 2 * turn + 1 < ranks; ++turn) {
    const bool pinging = rank / 2 == turn;
    MPI_Request request;
    if (pinging) {
      const int peer = rank ^ 1;
      for (int i = 0; i < repeats + 1; ++i) {
        const Clock::time_point start = Clock::now();
        if (rank % 2 == 0) {
          link.send(buffer, peer, 3)->wait();
          link.recv(buffer, peer, 4)->wait();
        } else {
          link.recv(buffer, peer, 3)->wait();
          link.send(buffer, peer, 4)->wait();
        }
        if (i > 0) hops.push_back(seconds_since(start) / 2);
      }
      sleeping_barrier();
    } else {
      // Compute until the pair is done (it joins the barrier last).
      MPI_Ibarrier(MPI_COMM_WORLD, &request);
      for (int done = 0; !done;) {
        ops::cpu::linear_forward(x, w, y);
        MPI_Test(&request, &done, MPI_STATUS_IGNORE);
      }
    }
  }
  return max_over_ranks(hops.empty() ? 0.0 : typical(hops, false));
}

// Every rank's compute durations of one step, in list order (0 for sends and receives).
std::vector<std::vector<double>> gather_durations(const pp::Schedule& schedule,
                                                  const pp::ExecutorStats& stats) {
  const int ranks = schedule.layout.ranks;
  std::vector<double> mine;
  for (const pp::ActionTiming& t : stats.timeline) {
    mine.push_back(pp::is_compute(t.action.kind) ? t.end_s - t.start_s : 0.0);
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
double replay_step(const pp::Schedule& schedule, const std::vector<std::vector<double>>& cost,
                   double hop) {
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
      const std::vector<pp::Action>& list = schedule.ranks[r];
      while (pc[r] < list.size()) {
        const pp::Action& a = list[pc[r]];
        const bool gradient =
            a.kind == pp::ActionKind::SendGrad || a.kind == pp::ActionKind::RecvGrad;
        if (pp::is_send(a.kind)) {
          arrivals[{r, a.peer, gradient}].push_back(clock[r] + hop);
        } else if (pp::is_recv(a.kind)) {
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

// CPU time of this process, all its threads (compute, MPI progress, link timer).
double process_cpu_seconds() {
  timespec t{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
  return static_cast<double>(t.tv_sec) + 1e-9 * static_cast<double>(t.tv_nsec);
}

// CPU time of each thread of this process so far (/proc/self/task/*/schedstat, ns
// resolution), keyed by "<name>:<tid>". The MPI progress thread and the link's timer are
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
  double step = 0;             // median over steps of the slowest rank's step time
  pp::StageCosts costs;        // of the median step: its in-step costs (no hop)
  // Every timed step's time and in-step costs, for the spread of the ratio.
  std::vector<double> step_times;
  std::vector<pp::StageCosts> step_costs;
  double bubble_fraction = 0;  // of the median step: 1 - sum(compute) / (ranks x step)
  double recv_wait = 0;        // of the median step: mean over ranks of the receive waits
  // Of the median step: the CPU time all ranks' processes used over the step's wall time, the
  // cores the job really had. Below --cores in a compute-bound phase means other work took
  // the rest.
  double cores_used = 0;
  // Of the median step: the share of the machine's core time the host's hypervisor took
  // (steal), from /proc/stat at the step's start and end on rank 0 (10 ms ticks).
  double steal_fraction = 0;
  std::vector<pp::ExecutorStats> runs;  // this rank's stats of the chosen step only
  // Of the chosen step, this rank's: when run() started (steady clock, shared by the
  // processes of one machine), and the CPU time of its compute thread and of the process.
  double run_start = 0;
  double main_thread_cpu = 0;
  double process_cpu = 0;
  std::map<std::string, double> thread_cpu;  // per thread, over the chosen step
};

Measured measure(const pp::Schedule& schedule, pp::PipelineExecutor& executor, int rank,
                 const StageShape& shape, int steps, int warmup, bool best) {
  const int ranks = schedule.layout.ranks;
  std::vector<double> step_times;
  std::vector<double> bubbles;
  std::vector<double> waits;
  std::vector<double> cores_used;
  std::vector<double> steals;
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
    pp::ExecutorStats stats = executor.run(stages);
    const double own_thread = thread_cpu_seconds() - thread_start;
    const double own_process = process_cpu_seconds() - cpu_start;
    std::map<std::string, double> threads = thread_cpu_table();
    for (auto& [name, seconds] : threads) {
      if (auto it = threads_before.find(name); it != threads_before.end()) seconds -= it->second;
    }
    const double cpu = sum_over_ranks(own_process);
    const double step = max_over_ranks(stats.step_seconds);
    const double compute = sum_over_ranks(stats.compute_seconds);
    const double wait = sum_over_ranks(stats.recv_wait_seconds) / ranks;
    const pp::StageCosts costs = in_step_costs(stages.cpu());
    const MachineTime machine_end = machine_time();
    double steal = machine_end.total > machine_start.total
                       ? (machine_end.steal - machine_start.steal) /
                             (machine_end.total - machine_start.total)
                       : 0.0;
    MPI_Bcast(&steal, 1, MPI_DOUBLE, 0, MPI_COMM_WORLD);
    if (i < warmup) continue;
    steals.push_back(steal);
    out.step_costs.push_back(costs);
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
  for (const pp::ActionTiming& t : measured.runs.front().timeline) {
    out << schedule_name << ',' << rank << ',' << pp::action_kind_name(t.action.kind) << ','
        << t.action.microbatch << ',' << t.action.stage << ',' << (offset + t.start_s) * 1e3 << ','
        << (offset + t.end_s) * 1e3 << '\n';
  }
  out << schedule_name << ',' << rank << ",cpu,0,0," << measured.main_thread_cpu * 1e3 << ','
      << measured.process_cpu * 1e3 << '\n';
  for (const auto& [name, seconds] : measured.thread_cpu) {
    out << schedule_name << ',' << rank << ",thread,0,0," << name << ',' << seconds * 1e3 << '\n';
  }
}

// Appends the simulated timeline to `<prefix>.sim.csv` in the same row format.
void write_simulated_trace(const std::string& prefix, const std::string& schedule_name,
                           const pp::SimulationResult& sim) {
  const std::string path = prefix + ".sim.csv";
  std::ofstream out(path, std::ios::app);
  TRIDENT_USER_CHECK(out.good(), "trident bench pp: cannot write --trace file ", path);
  for (const pp::TimelineEntry& t : sim.timeline) {
    out << schedule_name << ',' << t.rank << ',' << pp::action_kind_name(t.action.kind) << ','
        << t.action.microbatch << ',' << t.action.stage << ',' << t.start * 1e3 << ','
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
  cli::ArgParser parser("bench pp");
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
  auto mpi = std::make_shared<parallel::MpiBackend>(parallel::MpiComm::world());
  const int rank = mpi->rank();
  const int pp = mpi->size();
  TRIDENT_USER_CHECK(pp >= 2,
                     "trident bench pp: run under mpirun with at least 2 ranks (pp = "
                     "the number of ranks), got ",
                     pp);
  if (microbatches <= 0) microbatches = 2 * pp;
  const int hardware_cores = static_cast<int>(std::thread::hardware_concurrency());
  if (cores < 0) cores = pp > hardware_cores && hardware_cores > 0 ? hardware_cores : 0;
  pp::MachineModel machine;
  machine.cores = static_cast<int>(cores);
  parallel::LinkModel link_model;
  link_model.latency_us = latency_us;
  link_model.gbytes_per_s = gbps;
  auto link = std::make_shared<parallel::DelayedLink>(mpi, link_model);
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
        "sim.free: the alone-on-a-core costs with a core per rank (no sharing)\n"
        "replay: the simulator's rules with each action's own duration in the measured step\n"
        "cores: CPU time of all ranks over the measured step's wall time (cores the job had)\n"
        "steps: %s of %lld after %lld warm-up; load average at start: %.2f\n",
        pp, microbatches, layers, tokens, hidden, hidden, hidden, latency_us, gbps,
        p2p_seconds * 1e6, activation_bytes / 1024, best ? "fastest" : "median", hop_seconds * 1e6,
        busy_hop_seconds * 1e6, hardware_cores, cores, cores == 0 ? " (one per rank)" : "",
        best ? "fastest" : "median", repeats, best ? "fastest" : "median", steps, warmup,
        load_average());
    std::printf("%-14s %6s %6s %6s %17s %9s %10s %6s %11s %9s %6s %8s %8s %10s %6s %8s %6s %6s\n",
                "schedule", "F(ms)", "B(ms)", "W(ms)", "in-step F/B/W cpu", "meas(ms)", "sim.cores",
                "ratio", "range", "sim.free", "ratio", "bub.meas", "bub.sim", "replay(ms)", "ratio",
                "wait(ms)", "cores", "steal");
  }
  for (const std::string& name : split_names(schedules)) {
    pp::ScheduleRequest request;
    request.name = name;
    request.pp = pp;
    request.microbatches =
        static_cast<int>(std::max<long long>(microbatches, pp::min_microbatches(name, pp)));
    request.virtual_stages = name == "interleaved" ? static_cast<int>(virtual_stages) : 1;
    const pp::Schedule schedule = pp::make_schedule(request);

    pp::StageCosts costs = calibrate(schedule.layout, rank, shape, static_cast<int>(repeats), best);
    costs.p2p_latency = p2p_seconds;
    pp::PipelineExecutor executor(schedule, link);
    const Measured measured = measure(schedule, executor, rank, shape, static_cast<int>(steps),
                                      static_cast<int>(warmup), best);
    // Each step against its own prediction: in-step costs and what a hop really costs here
    // (the modelled link, MPI and the wake-ups on busy cores).
    auto predict = [&](pp::StageCosts in_step) {
      in_step.p2p_latency = busy_hop_seconds;
      return pp::simulate(schedule, in_step, machine);
    };
    double lowest_ratio = 1e30, highest_ratio = 0;
    for (size_t i = 0; i < measured.step_times.size(); ++i) {
      const double ratio = measured.step_times[i] / predict(measured.step_costs[i]).step_time;
      lowest_ratio = std::min(lowest_ratio, ratio);
      highest_ratio = std::max(highest_ratio, ratio);
    }
    const pp::StageCosts& shared_costs = measured.costs;
    if (!trace.empty()) write_trace(trace, name, rank, measured);
    const pp::SimulationResult sim = predict(shared_costs);
    const pp::SimulationResult sim_free = pp::simulate(schedule, costs);
    if (!trace.empty() && rank == 0) write_simulated_trace(trace, name, sim);
    const double replayed =
        replay_step(schedule, gather_durations(schedule, measured.runs.front()), hop_seconds);
    if (rank == 0) {
      // Pieces with a '/' or '-' inside are formatted first, so each column stays one word.
      char in_step[64], range[64];
      std::snprintf(in_step, sizeof in_step, "%.2f/%.2f/%.2f", shared_costs.forward * 1e3,
                    shared_costs.backward_input * 1e3, shared_costs.backward_weight * 1e3);
      std::snprintf(range, sizeof range, "%.3f-%.3f", lowest_ratio, highest_ratio);
      std::printf(
          "%-14s %6.2f %6.2f %6.2f %17s %9.1f %10.1f %6.3f %11s %9.1f %6.3f %8.3f %8.3f %10.1f "
          "%6.3f %8.1f %6.2f %6.3f\n",
          (name + (name == "interleaved" ? "/v" + std::to_string(virtual_stages) : "")).c_str(),
          costs.forward * 1e3, costs.backward_input * 1e3, costs.backward_weight * 1e3, in_step,
          measured.step * 1e3, sim.step_time * 1e3, measured.step / sim.step_time, range,
          sim_free.step_time * 1e3, measured.step / sim_free.step_time, measured.bubble_fraction,
          sim.bubble_fraction, replayed * 1e3, measured.step / replayed, measured.recv_wait * 1e3,
          measured.cores_used, measured.steal_fraction);
      std::fflush(stdout);
    }
  }
  if (rank == 0) std::printf("load average at end: %.2f\n", load_average());
  return 0;
}
