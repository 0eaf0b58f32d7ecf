#include "launch/commands/plan_schedule.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <iostream>

#include "launch/commands/plan_model.h"
#include "launch/commands/subprocess.h"
#include "parallel/pp/check.h"
#include "parallel/pp/timeline_text.h"
#include "runtime/core/error.h"

namespace trident::launch {

namespace {

namespace fs = std::filesystem;

// The plotting script lives in the source tree: look next to the working directory first,
// then relative to the binary (build/trident -> launch/plots/).
fs::path find_plot_script() {
  const fs::path relative = fs::path("launch") / "plots" / "pipeline_timeline.py";
  if (const char* dir = std::getenv("TRIDENT_SOURCE_DIR")) {
    if (fs::exists(fs::path(dir) / relative)) return fs::path(dir) / relative;
  }
  if (fs::exists(relative)) return relative;
  std::error_code error;
  const fs::path exe = fs::read_symlink("/proc/self/exe", error);
  if (!error) {
    for (fs::path dir = exe.parent_path(); !dir.empty() && dir != dir.root_path();
         dir = dir.parent_path()) {
      if (fs::exists(dir / relative)) return dir / relative;
    }
  }
  TRIDENT_USER_FAIL("--png: cannot find ", relative.string(),
                    "; run from the source tree or set TRIDENT_SOURCE_DIR");
}

void write_png(const parallel::pp::Schedule& schedule, const parallel::pp::SimulationResult& result,
               const std::string& png, const std::string& title) {
  const fs::path csv = fs::path(png).replace_extension(".csv");
  {
    std::ofstream file(csv);
    TRIDENT_USER_CHECK(file.good(), "--png: cannot write ", csv.string());
    file << parallel::pp::timeline_csv(schedule, result);
  }
  const std::string command = "/usr/bin/python3 " + shell_quote(find_plot_script().string()) +
                              " --csv " + shell_quote(csv.string()) + " --png " + shell_quote(png) +
                              " --title " + shell_quote(title);
  const int rc = std::system(command.c_str());
  TRIDENT_USER_CHECK(rc == 0, "--png: the plotting script failed (", command, ")");
}

double smallest_positive(std::initializer_list<double> values) {
  double best = 0;
  for (double v : values) {
    if (v > 0 && (best == 0 || v < best)) best = v;
  }
  return best > 0 ? best : 1.0;
}

}  // namespace

parallel::pp::SimulationResult plan_schedule(const SchedulePlanRequest& request,
                                             std::ostream& out) {
  const parallel::pp::StageCosts& costs = request.costs;
  TRIDENT_USER_CHECK(costs.forward > 0 && costs.backward_input > 0 && costs.backward_weight >= 0 &&
                         costs.p2p_latency >= 0,
                     "--cost-f and --cost-b must be positive, --cost-w and --cost-p2p not "
                     "negative");
  const parallel::pp::Schedule schedule = parallel::pp::make_schedule(request.schedule);
  const parallel::pp::CheckResult check = parallel::pp::check_schedule(schedule);
  TRIDENT_CHECK(check.ok, "generated schedule '", schedule.name, "' is invalid: ", check.message);
  const parallel::pp::SimulationResult result = parallel::pp::simulate(schedule, costs);

  const parallel::pp::StageLayout& layout = schedule.layout;
  out << "schedule " << schedule.name << ": pp=" << layout.ranks
      << " microbatches=" << schedule.microbatches << " virtual stages=" << layout.num_stages()
      << " (" << layout.chunks << " per rank, " << layout.name() << " layout)\n";
  out << "costs per stage: F=" << costs.forward << " B=" << costs.backward_input
      << " W=" << costs.backward_weight << " F&B=" << costs.overlapped_block()
      << " p2p=" << costs.p2p_latency << "\n";
  out << "check: ok (every F/B/W present once, dependencies met, sends match receives, "
         "no deadlock)\n\n";
  const double cell = smallest_positive(
      {costs.forward, costs.backward_input, costs.backward_weight, costs.p2p_latency});
  out << "timeline (one cell = " << cell << " time; F forward, B backward-input, "
      << "W backward-weight; lower case = a rank's second chunk; . idle)\n";
  out << parallel::pp::render_timeline_text(schedule, result, cell) << "\n";
  out << std::fixed << std::setprecision(3);
  out << "step time " << result.step_time << ", bubble fraction " << result.bubble_fraction << "\n";
  out << "rank        busy      bubble  peak activations (micro-batch x stage)\n";
  for (int r = 0; r < layout.ranks; ++r) {
    const parallel::pp::RankReport& report = result.ranks[r];
    out << std::setw(4) << r << std::setw(12) << report.busy << std::setw(12) << report.bubble
        << std::setw(10) << report.peak_activations << "\n";
  }
  if (!request.png.empty()) {
    const std::string title = schedule.name + "  pp=" + std::to_string(layout.ranks) +
                              "  microbatches=" + std::to_string(schedule.microbatches);
    write_png(schedule, result, request.png, title);
    out << "wrote " << request.png << "\n";
  }
  return result;
}

int run_schedule_plan(const launch::Args& args) {
  std::string schedule = "1f1b";
  std::string png;
  std::string config;
  long long pp_size = 4;
  long long microbatches = 8;
  long long virtual_stages = 0;  // 0: the schedule's own (2 for interleaved, else 1)
  parallel::pp::StageCosts costs;
  std::string names;
  for (const std::string& name : parallel::pp::schedule_names())
    names += (names.empty() ? "" : ", ") + name;
  launch::ArgParser parser("plan");
  parser.add_string("--schedule", &schedule, "pipeline schedule: " + names);
  parser.add_int("--pp", &pp_size, "pipeline-parallel ranks (default 4)");
  parser.add_int("--microbatches", &microbatches, "micro-batches per step (default 8)");
  parser.add_int("--virtual", &virtual_stages,
                 "model chunks per rank, 2 or more, for 'interleaved' (default 2)");
  parser.add_double("--cost-f", &costs.forward, "forward time of one stage (default 1)");
  parser.add_double("--cost-b", &costs.backward_input,
                    "backward-for-input time of one stage (default 1)");
  parser.add_double("--cost-w", &costs.backward_weight,
                    "backward-for-weight time of one stage (default 1)");
  parser.add_double("--cost-fb", &costs.forward_backward,
                    "time of one overlapped F&B block in DualPipeV (default F+B+W: no overlap "
                    "gain)");
  parser.add_double("--cost-p2p", &costs.p2p_latency, "latency of one send (default 0)");
  parser.add_string("--png", &png, "also draw the timeline into this PNG file");
  parser.add_string("--config", &config, "model planning: use without --schedule");
  if (!parser.parse(args)) return 0;
  TRIDENT_USER_CHECK(pp_size >= 1 && pp_size <= 4096, "--pp must be in [1, 4096], got ", pp_size);
  TRIDENT_USER_CHECK(microbatches >= 1 && microbatches <= 100000,
                     "--microbatches must be in [1, 100000], got ", microbatches);
  if (virtual_stages == 0) virtual_stages = schedule == "interleaved" ? 2 : 1;
  TRIDENT_USER_CHECK(virtual_stages >= 1 && virtual_stages <= 64,
                     "--virtual must be in [1, 64], got ", virtual_stages);
  SchedulePlanRequest request;
  request.schedule = {schedule, static_cast<int>(pp_size), static_cast<int>(microbatches),
                      static_cast<int>(virtual_stages)};
  request.costs = costs;
  request.png = png;
  plan_schedule(request, std::cout);
  return 0;
}

}  // namespace trident::launch

namespace {
bool has_flag(const trident::launch::Args& args, const std::string& flag) {
  return std::any_of(args.begin(), args.end(), [&](const std::string& a) {
    return a == flag || a.rfind(flag + "=", 0) == 0;
  });
}
}  // namespace

// `trident plan`: the model cost model with --config (parameters, memory per rank, FLOPs,
// traffic, step time, GPU-hours), the pipeline schedule planner with --schedule.
TRIDENT_COMMAND(plan_command, "plan",
                "cost model: --config (memory, step time, GPU-hours) or --schedule (pipeline timeline)") {
  if (has_flag(args, "--config") && !has_flag(args, "--schedule")) {
    return trident::launch::run_model_plan(args);
  }
  return trident::launch::run_schedule_plan(args);
}
