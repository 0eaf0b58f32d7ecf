// trident bench eval: held-out evaluation, `trident eval` against eager PyTorch evaluating the
// same problems under the same weights with the same threads: the arithmetic eval split's
// prompts, each prompt length's problems prefilled together, greedy decoding against the MLA
// latent cache until "</answer>" or EOS, then the rule rewards. Both are timed as whole
// processes, alternating, several rounds. The reference is fed trident's tokens (the same work)
// and scores the completions itself, so a run fails unless both chose alike up to round-off and
// both give the same accuracy and format rate.
//
// The weights are random (--config, --set) unless --hf-dir names a model, such as a trained
// one exported with `trident convert`: only a trained model writes answers and stops early.
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "launch/cli.h"
#include "launch/commands/config_flags.h"
#include "launch/commands/process_race.h"
#include "launch/commands/scratch_dir.h"
#include "launch/commands/subprocess.h"
#include "models/deepseek_v3/registry.h"
#include "ops/cpu_threads.h"
#include "runtime/config/config.h"
#include "runtime/core/error.h"

namespace {

using trident::launch::shell_quote;

struct EvalSummary {
  int64_t problems = 0;
  double accuracy = 0.0;
  double format_rate = 0.0;
  double completion_length = 0.0;
  double max_regret = 0.0;
};

// Trident's summary and the reference's regret; fails unless both scored every problem alike.
EvalSummary compare_evaluations(const std::string& ours_path, const std::string& theirs_path) {
  const nlohmann::json ours = nlohmann::json::parse(std::ifstream(ours_path));
  const nlohmann::json theirs = nlohmann::json::parse(std::ifstream(theirs_path));
  const nlohmann::json& problems = ours.at("problems");
  const nlohmann::json& correct = theirs.at("correct");
  const nlohmann::json& format_ok = theirs.at("format_ok");
  TRIDENT_CHECK(problems.size() == correct.size() && problems.size() == format_ok.size(),
                "trident eval scored ", problems.size(), " problems, the reference ",
                correct.size());
  for (size_t i = 0; i < problems.size(); ++i) {
    TRIDENT_CHECK(
        problems[i].at("correct") == correct[i] && problems[i].at("format_ok") == format_ok[i],
        "problem ", i, " ('", problems[i].at("prompt").get<std::string>(),
        "'): trident eval and the reference's rule rewards disagree (correct ",
        problems[i].at("correct").dump(), " / ", correct[i].dump(), ", format ",
        problems[i].at("format_ok").dump(), " / ", format_ok[i].dump(), ")");
  }
  EvalSummary summary;
  summary.problems = static_cast<int64_t>(problems.size());
  summary.accuracy = ours.at("accuracy").get<double>();
  summary.format_rate = ours.at("format_rate").get<double>();
  summary.completion_length = ours.at("completion_length").get<double>();
  summary.max_regret = theirs.at("max_regret").get<double>();
  return summary;
}

}  // namespace

TRIDENT_COMMAND(bench_eval_command, "bench eval",
                "time trident eval (held-out greedy accuracy) against eager PyTorch, whole "
                "processes") {
  trident::launch::ArgParser parser("bench eval");
  trident::launch::ConfigFlags config_flags;
  config_flags.config = "small";
  config_flags.add_to(parser);
  std::string hf_dir, ops = "add";
  long long count = 64, digits = 2, task_seed = 0, max_new_tokens = 64, rounds = 3, threads = 0,
            seed = 1;
  std::string python = TRIDENT_PYTHON_PATH;
  parser.add_string("--hf-dir", &hf_dir,
                    "evaluate this model (config.json and *.safetensors) instead of random "
                    "weights of --config");
  parser.add_int("--count", &count, "eval problems (64)");
  parser.add_int("--digits", &digits, "operand digits (2)");
  parser.add_string("--ops", &ops, "operations: any of add,sub,mul (add)");
  parser.add_int("--task-seed", &task_seed, "seed of the eval split, as train.seed (0)");
  parser.add_int("--max-new-tokens", &max_new_tokens, "tokens generated at most (64)");
  parser.add_int("--rounds", &rounds, "alternating rounds, each timing both once (3)");
  parser.add_int("--threads", &threads,
                 "threads for both (default: what trident chooses, ops/cpu_threads.h)");
  parser.add_int("--seed", &seed, "seed of the random weights (1)");
  parser.add_string("--python", &python, "interpreter with torch (/usr/bin/python3)");
  if (!parser.parse(args)) return 0;
  TRIDENT_USER_CHECK(count >= 1 && max_new_tokens >= 1 && rounds >= 1,
                     "--count, --max-new-tokens and --rounds must be ≥ 1, got ", count, ", ",
                     max_new_tokens, " and ", rounds);
  if (threads <= 0) threads = trident::ops::cpu_threads().threads;

  // A random model in a workspace of its own, or the one named.
  std::optional<trident::launch::RaceWorkspace> random_model;
  trident::config::ModelConfig model_config;
  std::string model_dir = hf_dir;
  if (hf_dir.empty()) {
    model_config = config_flags.load(1).model();
    random_model.emplace("eval", model_config, static_cast<uint64_t>(seed), 0, 0);
    model_dir = random_model->path("model");
  } else {
    model_config = trident::config::import_hf_config(hf_dir + "/config.json");
  }
  const int64_t parameters = trident::models::ParameterRegistry(model_config).counts().total;
  const trident::launch::ScratchDir outputs("bench_eval_outputs");
  std::filesystem::create_directories(outputs.path());
  const std::string ours_out = outputs.file("trident.json");
  const std::string theirs_out = outputs.file("reference.json");
  const std::string task = " --count " + std::to_string(count) + " --digits " +
                           std::to_string(digits) + " --ops " + shell_quote(ops) + " --seed " +
                           std::to_string(task_seed);
  const std::string ours_command = trident::launch::RaceWorkspace::trident_command(
      threads, "eval --hf-dir " + shell_quote(model_dir) + task + " --max-new-tokens " +
                   std::to_string(max_new_tokens) + " --output " + shell_quote(ours_out));
  const std::string theirs_command = trident::launch::RaceWorkspace::reference_command(
      threads, python, "eval_reference.py",
      "--hf-dir " + shell_quote(model_dir) + " --follow " + shell_quote(ours_out) + " --output " +
          shell_quote(theirs_out));

  std::printf(
      "model '%s' (%s): %lld parameters, %lld eval problems (%lld digits, %s), at most %lld new "
      "tokens each (greedy, latent cache, stop at </answer>), %lld threads\n",
      model_config.name().c_str(), hf_dir.empty() ? "random weights" : hf_dir.c_str(),
      static_cast<long long>(parameters), count, digits, ops.c_str(), max_new_tokens, threads);
  const std::vector<double> ratios =
      trident::launch::race_processes(ours_command, theirs_command, rounds, "trident eval");
  const EvalSummary summary = compare_evaluations(ours_out, theirs_out);
  // As in bench generate: the logits are fp32 on both sides, summed in different orders.
  TRIDENT_CHECK(summary.max_regret < 1e-3,
                "trident eval chose tokens the reference ranks below its best by up to ",
                summary.max_regret);
  std::printf(
      "speed-up (PyTorch time / trident eval time): %s; accuracy %.4f, format rate %.4f, mean "
      "completion %.1f tokens, the same from both; max logit gap %.2g\n",
      trident::launch::speedup_summary(ratios).c_str(), summary.accuracy, summary.format_rate,
      summary.completion_length, summary.max_regret);
  return 0;
}
