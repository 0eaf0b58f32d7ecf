// trident bench score: `trident score` against eager PyTorch scoring the same sequences under
// the same weights with the same threads, both timed as whole processes (start-up, loading the
// weights, reading the tokens and writing the JSON included), alternating, several rounds. The
// two outputs must agree, so both did the same work.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>
#include <vector>

#include "launch/cli.h"
#include "launch/commands/config_flags.h"
#include "launch/commands/process_race.h"
#include "launch/commands/subprocess.h"
#include "ops/cpu_threads.h"
#include "runtime/core/error.h"

namespace {

using trident::launch::shell_quote;

// Largest difference between the two outputs' log-probabilities; throws where their shapes differ.
double max_logprob_difference(const std::string& ours_path, const std::string& theirs_path) {
  const nlohmann::json ours = nlohmann::json::parse(std::ifstream(ours_path)).at("logprobs");
  const nlohmann::json theirs = nlohmann::json::parse(std::ifstream(theirs_path)).at("logprobs");
  TRIDENT_CHECK(ours.size() == theirs.size(), "trident score gave ", ours.size(),
                " sequences, the reference ", theirs.size());
  double worst = 0.0;
  for (size_t i = 0; i < ours.size(); ++i) {
    TRIDENT_CHECK(ours[i].size() == theirs[i].size(), "sequence ", i, ": ", ours[i].size(),
                  " log-probabilities from trident score, ", theirs[i].size(),
                  " from the reference");
    for (size_t j = 0; j < ours[i].size(); ++j) {
      worst = std::max(worst, std::abs(ours[i][j].get<double>() - theirs[i][j].get<double>()));
    }
  }
  return worst;
}

}  // namespace

TRIDENT_COMMAND(bench_score_command, "bench score",
                "time trident score against eager PyTorch on the same sequences, whole processes") {
  trident::launch::ArgParser parser("bench score");
  trident::launch::ConfigFlags config_flags;
  config_flags.config = "small";
  config_flags.add_to(parser);
  long long sequences = 8, length = 256, rounds = 3, threads = 0, seed = 1;
  std::string python = TRIDENT_PYTHON_PATH;
  parser.add_int("--sequences", &sequences, "sequences to score (8)");
  parser.add_int("--length", &length, "tokens per sequence (256)");
  parser.add_int("--rounds", &rounds, "alternating rounds, each timing both once (3)");
  parser.add_int("--threads", &threads,
                 "threads for both (default: what trident chooses, ops/cpu_threads.h)");
  parser.add_int("--seed", &seed, "seed of the random weights and tokens (1)");
  parser.add_string("--python", &python, "interpreter with torch (/usr/bin/python3)");
  if (!parser.parse(args)) return 0;
  TRIDENT_USER_CHECK(sequences >= 1 && length >= 2 && rounds >= 1,
                     "--sequences and --rounds must be ≥ 1 and --length ≥ 2, got ", sequences, ", ",
                     rounds, " and ", length);
  const trident::config::TridentConfig config = config_flags.load(1);
  const trident::config::ModelConfig& model_config = config.model();
  TRIDENT_USER_CHECK(length <= model_config.max_position_embeddings(), "--length ", length,
                     " is beyond model.max_position_embeddings = ",
                     model_config.max_position_embeddings(), " (raise it with --set)");
  if (threads <= 0) threads = trident::ops::cpu_threads().threads;

  // A model with random weights in the Hugging Face layout, and random token ids.
  const trident::launch::RaceWorkspace workspace("score", model_config, static_cast<uint64_t>(seed),
                                                 sequences, length);
  const std::string ours_out = workspace.path("trident.json");
  const std::string theirs_out = workspace.path("reference.json");
  const std::string ours_command = trident::launch::RaceWorkspace::trident_command(
      threads, "score" + workspace.model_and_tokens() + " --output " + shell_quote(ours_out));
  const std::string theirs_command = trident::launch::RaceWorkspace::reference_command(
      threads, python, "score_reference.py",
      workspace.model_and_tokens() + " --output " + shell_quote(theirs_out));

  std::printf(
      "model '%s': %lld parameters (MTP not used by scoring), %lld sequences × %lld "
      "tokens, %lld threads\n",
      model_config.name().c_str(), static_cast<long long>(workspace.parameters()), sequences,
      length, threads);
  const std::vector<double> ratios =
      trident::launch::race_processes(ours_command, theirs_command, rounds, "trident score");
  const double difference = max_logprob_difference(ours_out, theirs_out);
  // fp32 on both sides in different orders of summation: a few ulps of a log-probability of
  // order log(V); anything near 1e-3 would mean different work.
  TRIDENT_CHECK(difference < 1e-3,
                "trident score and the reference disagree: max |Δ log p| = ", difference);
  std::printf(
      "speed-up (PyTorch time / trident score time): %s; outputs agree to max |Δ log p| = %.2g\n",
      trident::launch::speedup_summary(ratios).c_str(), difference);
  return 0;
}
