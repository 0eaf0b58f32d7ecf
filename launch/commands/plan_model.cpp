#include "launch/commands/plan_model.h"

#include <algorithm>
#include <fstream>
#include <iostream>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "models/deepseek_v3/planner/planner.h"
#include "models/deepseek_v3/planner/report.h"
#include "runtime/config/config.h"
#include "runtime/core/error.h"

namespace trident::launch {

namespace planner = models::planner;

namespace {

std::vector<int64_t> parse_gpu_list(const std::string& text) {
  std::vector<int64_t> out;
  std::stringstream in(text);
  std::string item;
  while (std::getline(in, item, ',')) {
    char* end = nullptr;
    const long long n = std::strtoll(item.c_str(), &end, 10);
    TRIDENT_USER_CHECK(end != item.c_str() && *end == '\0' && n > 0, "--sweep: '", item,
                       "' is not a positive GPU count (expected e.g. 64,128,256)");
    out.push_back(n);
  }
  TRIDENT_USER_CHECK(!out.empty(), "--sweep needs a comma-separated list of GPU counts");
  return out;
}

std::optional<planner::Plan> try_plan(const config::TridentConfig& config,
                                      const models::ParameterRegistry& registry, int64_t gpus,
                                      const planner::HardwareSpec& hw,
                                      const planner::PlanOptions& options) {
  try {
    const planner::Layout layout = planner::resolve_layout(config, gpus, hw.gpus_per_node);
    return planner::make_plan(config, registry, layout, hw, options);
  } catch (const UserError&) {
    return std::nullopt;  // a layout that does not divide: not a candidate
  }
}

// The layout the config names, with ep capped by the ranks of a stage.
std::optional<planner::Plan> configured_plan(config::TridentConfig config,
                                             const models::ParameterRegistry& registry,
                                             int64_t gpus, const planner::HardwareSpec& hw,
                                             const planner::PlanOptions& options) {
  config::ParallelConfig* p = config.mutable_parallel();
  const int64_t pp = std::max<int64_t>(1, p->pp()), tp = std::max<int64_t>(1, p->tp());
  if (gpus % (pp * tp) != 0) return std::nullopt;
  p->set_ep(std::min<int64_t>(std::max<int64_t>(1, p->ep()), gpus / (pp * tp)));
  return try_plan(config, registry, gpus, hw, options);
}

// The fastest layout that fits among pp ∈ {1..64}, tp ∈ {1, 2, 4, 8}, ep a power of two
// dividing the experts and dp·tp; if none fits, the one with the least memory.
std::optional<planner::Plan> best_plan(config::TridentConfig config,
                                       const models::ParameterRegistry& registry, int64_t gpus,
                                       const planner::HardwareSpec& hw,
                                       const planner::PlanOptions& options) {
  std::optional<planner::Plan> best;
  auto peak = [](const planner::Plan& plan) {
    return plan.stages[static_cast<size_t>(plan.peak_stage)].memory.total();
  };
  const int64_t experts = std::max<int64_t>(1, config.model().n_routed_experts());
  for (int64_t pp = 1; pp <= 64; pp *= 2) {
    for (int64_t tp = 1; tp <= 8; tp *= 2) {
      if (gpus % (pp * tp) != 0) continue;
      const int64_t stage = gpus / pp;
      for (int64_t ep = 1; ep <= std::min(stage, experts); ep *= 2) {
        if (experts % ep != 0) continue;
        config.mutable_parallel()->set_pp(pp);
        config.mutable_parallel()->set_tp(tp);
        config.mutable_parallel()->set_ep(ep);
        config.mutable_parallel()->set_etp(1);
        std::optional<planner::Plan> plan = try_plan(config, registry, gpus, hw, options);
        if (!plan) continue;
        const bool better =
            !best || (plan->fits && !best->fits) ||
            (plan->fits && best->fits &&
             plan->gpu_hours_per_trillion_tokens < best->gpu_hours_per_trillion_tokens) ||
            (!plan->fits && !best->fits && peak(*plan) < peak(*best));
        if (better) best = std::move(plan);
      }
    }
  }
  return best;
}

int run_sweep(const config::TridentConfig& config, const std::vector<int64_t>& sizes,
              const planner::HardwareSpec& hw, const planner::PlanOptions& options,
              const std::string& csv_path) {
  models::check_model_config(config.model());
  const models::ParameterRegistry registry(config.model());
  std::ostringstream csv;
  csv << "kind," << planner::plan_csv_header() << "\n";
  for (const int64_t gpus : sizes) {
    if (auto plan = configured_plan(config, registry, gpus, hw, options)) {
      csv << "configured," << planner::plan_csv_row(*plan) << "\n";
    }
    if (auto plan = best_plan(config, registry, gpus, hw, options)) {
      csv << "best," << planner::plan_csv_row(*plan) << "\n";
    }
  }
  if (csv_path.empty()) {
    std::cout << csv.str();
  } else {
    std::ofstream file(csv_path);
    TRIDENT_USER_CHECK(file.good(), "--csv: cannot write '", csv_path, "'");
    file << csv.str();
    std::cout << "wrote " << csv_path << "\n";
  }
  return 0;
}

}  // namespace

int run_model_plan(const launch::Args& args) {
  std::string config_name, hardware = "h800", recompute = "none", sweep, csv;
  long long gpus = 0, moment_bytes = 4, dispatch_bytes = 0;
  bool fp8_cache = false;
  std::vector<std::string> sets, hw_overrides;
  launch::ArgParser parser("plan");
  parser.add_string("--config", &config_name, "preset name or textproto path");
  parser.add_int("--gpus", &gpus, "GPU count; dp = gpus / (pp · tp) (default: from the config)");
  parser.add_repeated("--set", &sets, "override a config field: path.to.field=value");
  parser.add_string("--hardware", &hardware, "hardware preset: h800 (default), h100, h200");
  parser.add_repeated(
      "--hw", &hw_overrides,
      "override a hardware figure, e.g. mfu=0.4, ib_gbps=50, comm_sm_fraction=0.15");
  parser.add_string("--recompute", &recompute, "none (default), selective or full");
  parser.add_int("--moment-bytes", &moment_bytes, "bytes per AdamW moment element: 4 or 2");
  parser.add_int("--dispatch-bytes", &dispatch_bytes,
                 "bytes per dispatched element (1 = FP8; default: the activation size)");
  parser.add_bool("--fp8-cache", &fp8_cache, "cache expert/o_proj GEMM inputs in FP8");
  parser.add_string("--sweep", &sweep, "comma-separated GPU counts; writes CSV (see --csv)");
  parser.add_string("--csv", &csv, "CSV output of --sweep (default: stdout)");
  if (!parser.parse(args)) return 0;
  TRIDENT_USER_CHECK(!config_name.empty(),
                     "trident plan: --config is required (e.g. "
                     "--config deepseek-v3-671b)");
  TRIDENT_USER_CHECK(gpus >= 0, "--gpus must be positive, got ", gpus);
  TRIDENT_USER_CHECK(moment_bytes == 4 || moment_bytes == 2, "--moment-bytes must be 4 or 2");
  TRIDENT_USER_CHECK(dispatch_bytes >= 0 && dispatch_bytes <= 4, "--dispatch-bytes must be 0-4");

  config::TridentConfig config = config::load_config(config::resolve_config_path(config_name));
  config::apply_overrides(config, sets);
  planner::HardwareSpec hw = planner::hardware_preset(hardware);
  for (const std::string& o : hw_overrides) planner::apply_hardware_override(hw, o);
  planner::PlanOptions options;
  options.recompute = planner::parse_recompute(recompute);
  options.moment_bytes = moment_bytes;
  options.dispatch_bytes = dispatch_bytes;
  options.fp8_activation_cache = fp8_cache;

  if (!sweep.empty()) return run_sweep(config, parse_gpu_list(sweep), hw, options, csv);

  const planner::Plan plan = planner::make_plan(config, gpus, hw, options);
  planner::check_fits(plan);  // a layout that does not fit is refused, naming what overflows
  std::cout << planner::format_plan(plan) << "assumptions:\n";
  for (const std::string& line : planner::describe_hardware(hw)) std::cout << "  " << line << "\n";
  return 0;
}

}  // namespace trident::launch
