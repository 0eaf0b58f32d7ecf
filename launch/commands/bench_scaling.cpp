// trident bench scaling: one point of a scaling experiment. Runs `--steps` training steps of the
// configured model and layout (pp × dp × tp, or pp × dp with the MoE layers over ep) with every
// communicator behind a DelayedLink (the pipeline's sends too), measures on each rank the wall time per step, the compute
// thread's CPU time per step and the allocator's peak, evaluates the planner for the same
// config and layout, and writes one JSON record (rank 0) for launch/experiments/scaling.py.
//
// Why the CPU time: on a machine with fewer cores than ranks the ranks share cores, so the wall
// time of a step includes time a rank waited for a core. The compute thread's CPU time is what
// the rank's work costs on a core of its own; wall − CPU is waiting, for the (modelled) network
// or for a core.
#include <mpi.h>
#include <time.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "launch/cli.h"
#include "launch/commands/config_flags.h"
#include "launch/commands/median.h"
#include "models/deepseek_v3/planner/planner.h"
#include "parallel/context.h"
#include "parallel/mpi_session.h"
#include "runtime/core/allocator.h"
#include "runtime/core/error.h"
#include "runtime/core/logging.h"
#include "runtime/train/data_setup.h"
#include "runtime/train/trainer.h"

namespace {

using namespace trident;
namespace planner = models::planner;

double thread_cpu_seconds() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + 1e-9 * static_cast<double>(ts.tv_nsec);
}

// What one rank measured over the timed steps (doubles, so MPI_Gather moves them as one array).
struct RankSample {
  double wall_per_step = 0;
  double cpu_per_step = 0;
  double peak_bytes = 0;
  double predicted_bytes = 0;
  double state_bytes = 0;            // alive between steps: weights, gradients, optimizer
  double predicted_state_bytes = 0;  // weights + master + moments + gradients
};
constexpr int kSampleFields = 6;

}  // namespace

TRIDENT_COMMAND(bench_scaling_command, "bench scaling",
                "one scaling-experiment point: step time, compute time and peak memory per rank "
                "over a DelayedLink, beside the planner's prediction") {
  launch::ArgParser parser("bench scaling");
  launch::ConfigFlags config_flags;
  config_flags.add_to(parser);
  long long steps = 3, warmup = 1;
  double latency_us = 0, gbps = 0;
  std::string json_path;
  std::vector<std::string> hw_overrides;
  parser.add_int("--steps", &steps, "timed training steps (default 3)");
  parser.add_int("--warmup", &warmup, "untimed steps first (default 1)");
  parser.add_double("--latency-us", &latency_us, "DelayedLink latency per operation in µs (0)");
  parser.add_double("--gbps", &gbps, "DelayedLink bandwidth in GB/s, every group (0 = unlimited)");
  parser.add_repeated("--hw", &hw_overrides,
                      "planner hardware field=value for the predicted step time (repeatable)");
  parser.add_string("--json", &json_path, "write the record to FILE (rank 0); default stdout");
  if (!parser.parse(args)) return 0;
  TRIDENT_USER_CHECK(steps > 0 && warmup >= 0,
                     "trident bench scaling: --steps must be positive and --warmup not negative");

  parallel::MpiSession session(nullptr, nullptr);
  config::TridentConfig config = config_flags.load(session.world_size());
  config.mutable_train()->set_steps(warmup + steps);
  configure_logging({LogLevel::Warn, false});

  parallel::comm::LinkModel link;
  link.latency_us = latency_us;
  link.gbytes_per_s = gbps;
  const auto context = parallel::make_parallel_context(config, link);

  planner::HardwareSpec hw;
  for (const std::string& assignment : hw_overrides) {
    planner::apply_hardware_override(hw, assignment);
  }
  const planner::Plan plan = planner::make_plan(config, 0, hw, planner::PlanOptions{});

  Allocator& cpu = Allocator::instance(Device::CPU);
  RankSample sample;
  {
    train::Trainer trainer(config, *context, train::make_train_sampler(config));
    for (long long s = 0; s < warmup; ++s) trainer.step();
    cpu.reset_peak();
    sample.state_bytes = static_cast<double>(cpu.stats().current_bytes);
    // Per step, each after a barrier; the median keeps one step disturbed by another process
    // on a shared machine from deciding the result.
    std::vector<double> walls, cpus;
    for (long long s = 0; s < steps; ++s) {
      MPI_Barrier(MPI_COMM_WORLD);
      const auto wall0 = std::chrono::steady_clock::now();
      const double cpu0 = thread_cpu_seconds();
      trainer.step();
      cpus.push_back(thread_cpu_seconds() - cpu0);
      walls.push_back(
          std::chrono::duration<double>(std::chrono::steady_clock::now() - wall0).count());
    }
    sample.wall_per_step = trident::launch::median(walls);
    sample.cpu_per_step = trident::launch::median(cpus);
    sample.peak_bytes = static_cast<double>(cpu.stats().peak_bytes);
    const planner::MemoryBreakdown& predicted =
        planner::plan_for_rank(plan, context->coords().rank).memory;
    sample.predicted_bytes = predicted.total();
    sample.predicted_state_bytes =
        predicted.weights + predicted.master + predicted.moments + predicted.grads;
  }

  const int world = context->layout().world_size();
  std::vector<double> gathered(static_cast<size_t>(world) * kSampleFields);
  const double mine[kSampleFields] = {sample.wall_per_step, sample.cpu_per_step,
                                      sample.peak_bytes,    sample.predicted_bytes,
                                      sample.state_bytes,   sample.predicted_state_bytes};
  MPI_Gather(mine, kSampleFields, MPI_DOUBLE, gathered.data(), kSampleFields, MPI_DOUBLE, 0,
             MPI_COMM_WORLD);
  if (!context->primary()) return 0;

  nlohmann::json ranks = nlohmann::json::array();
  double wall = 0, compute = 0;
  for (int r = 0; r < world; ++r) {
    const double* g = &gathered[static_cast<size_t>(r) * kSampleFields];
    ranks.push_back({{"rank", r},
                     {"wall_s", g[0]},
                     {"compute_s", g[1]},
                     {"peak_bytes", g[2]},
                     {"predicted_bytes", g[3]},
                     {"state_bytes", g[4]},
                     {"predicted_state_bytes", g[5]}});
    wall = std::max(wall, g[0]);
    compute = std::max(compute, g[1]);
  }
  const auto& p = config.parallel();
  const double tokens =
      static_cast<double>(config.train().global_batch() * config.train().seq_len());
  const nlohmann::json record{
      {"world", world},
      {"pp", plan.layout.pp},
      {"schedule", planner::schedule_name(plan.layout.schedule)},
      {"microbatches", plan.layout.microbatches},
      {"dp", p.dp()},
      {"tp", p.tp()},
      {"ep", p.ep()},
      {"zero1", p.zero1()},
      {"a2a_chunks", p.a2a_chunks()},
      {"global_batch", config.train().global_batch()},
      {"micro_batch", config.train().micro_batch()},
      {"seq_len", config.train().seq_len()},
      {"tokens_per_step", tokens},
      {"steps", steps},
      {"latency_us", latency_us},
      {"gbps", gbps},
      {"step_s", wall},        // slowest rank's median wall time per step
      {"compute_s", compute},  // busiest rank's median compute-thread CPU time per step
      {"tokens_per_s", tokens / wall},
      {"model_flops_per_token", plan.flops_per_token.total()},
      {"predicted_step_s", plan.step.total()},
      {"predicted_compute_s", plan.step.compute},
      // The planner's pipeline terms: the schedule's bubble (idle time of the slowest stage
      // from its stage times, models/deepseek_v3/planner/cost.h) and the p2p sends inside each
      // micro-batch; both are 0 at pp = 1.
      {"predicted_bubble_s", plan.step.bubble},
      {"predicted_p2p_bytes", plan.comm.p2p},
      {"predicted_peak_bytes", plan.stages[static_cast<size_t>(plan.peak_stage)].memory.total()},
      {"ranks", ranks}};
  if (json_path.empty()) {
    std::printf("%s\n", record.dump().c_str());
  } else {
    std::ofstream out(json_path);
    TRIDENT_USER_CHECK(out.good(), "trident bench scaling: cannot write --json ", json_path);
    out << record.dump() << "\n";
  }
  return 0;
}
