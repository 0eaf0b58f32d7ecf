// `trident config`: load a preset or file, apply --set overrides, validate, and print the result.
// The same path every training command takes before it allocates anything, so a config can be
// checked (for any number of ranks) without starting a job.
#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

#include "launch/cli.h"
#include "runtime/config/config.h"
#include "runtime/core/error.h"

namespace {

using trident::config::TridentConfig;

std::string summary(const TridentConfig& config, const std::string& origin, long long world) {
  const auto& m = config.model();
  const auto& p = config.parallel();
  const auto& t = config.train();
  const long long ranks = p.pp() * p.dp() * p.tp();
  const long long micro = t.global_batch() / (t.micro_batch() * p.dp());
  std::string out = origin + ": valid";
  if (world > 0) out += " for " + std::to_string(world) + (world == 1 ? " rank" : " ranks");
  out += "\n  model " + m.name() + ": " + std::to_string(m.num_hidden_layers()) + " layers (" +
         std::to_string(m.first_k_dense_replace()) + " dense), hidden " +
         std::to_string(m.hidden_size()) + ", " + std::to_string(m.n_routed_experts()) +
         " routed experts, top-" + std::to_string(m.num_experts_per_tok()) + ", MTP depth " +
         std::to_string(m.num_nextn_predict_layers()) + "\n";
  out += "  layout pp " + std::to_string(p.pp()) + " x dp " + std::to_string(p.dp()) + " x tp " +
         std::to_string(p.tp()) + " = " + std::to_string(ranks) +
         (ranks == 1 ? " rank" : " ranks") + "; ep " + std::to_string(p.ep()) + ", etp " +
         std::to_string(p.etp()) + "; schedule " + p.schedule() + ", " + std::to_string(micro) +
         " micro-batches per step\n";
  return out;
}

int run_config(const trident::launch::Args& args) {
  std::string config_name;
  std::string from_hf;
  std::string hf_out;
  std::vector<std::string> overrides;
  long long world_size = 0;
  bool print = false;
  trident::launch::ArgParser parser("config");
  parser.add_string(
      "--config", &config_name,
      "preset name (a file of configs/: tiny, small, medium, deepseek-v3-671b, ...) or path to a "
      ".textproto");
  parser.add_repeated("--set", &overrides, "override a field: path.to.field=value (repeatable)");
  parser.add_int("--world-size", &world_size,
                 "check the layout against this many ranks (0: skip that check)");
  parser.add_bool("--print", &print, "print the resolved config as textproto");
  parser.add_string("--from-hf", &from_hf,
                    "take the model from a Hugging Face DeepSeek-V3 config.json");
  parser.add_string("--hf-out", &hf_out, "also write the model as a Hugging Face config.json");
  try {
    if (!parser.parse(args)) return 0;
    TRIDENT_USER_CHECK(!config_name.empty() || !from_hf.empty(),
                       "needs --config NAME|PATH (a preset such as tiny) or --from-hf config.json"
                       "\n",
                       parser.usage());
    TRIDENT_USER_CHECK(world_size >= 0 && world_size <= (1LL << 30), "--world-size must be ≥ 0 ",
                       "(0 skips the rank-count check), got ", world_size);
    std::string origin = "defaults";
    TridentConfig config = trident::config::default_config();
    if (!config_name.empty()) {
      origin = trident::config::resolve_config_path(config_name);
      config = trident::config::load_config(origin);
    }
    if (!from_hf.empty()) {
      *config.mutable_model() = trident::config::import_hf_config(from_hf);
      origin += " + model from " + from_hf;
    }
    trident::config::apply_overrides(config, overrides);
    trident::config::validate(config, static_cast<int>(world_size));
    if (!hf_out.empty()) {
      std::ofstream out(hf_out);
      out << trident::config::export_hf_config_json(config.model());
      TRIDENT_USER_CHECK(out.good(), "--hf-out: cannot write '", hf_out, "'");
    }
    if (print) {
      std::fputs(trident::config::to_text(config).c_str(), stdout);
    } else {
      std::fputs(summary(config, origin, world_size).c_str(), stdout);
    }
    return 0;
  } catch (const trident::UserError& e) {
    // One clear message, without the source location meant for developers.
    // Flag errors from the parser already start with "trident config:".
    const std::string& detail = e.detail();
    const char* prefix = detail.rfind("trident config", 0) == 0 ? "" : "trident config: ";
    std::fprintf(stderr, "%s%s\n", prefix, detail.c_str());
    return 2;
  }
}

}  // namespace

TRIDENT_COMMAND(config_command, "config",
                "load, override and validate a config; print it (--print) or convert from HF") {
  return run_config(args);
}
