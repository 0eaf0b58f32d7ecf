// trident bench generate: rollouts, `trident generate` against eager PyTorch generating from the
// same prompts under the same weights with the same threads: the prompts prefilled, then one
// token per step against the MLA latent cache, greedy, exactly --new-tokens tokens each. Both are
// timed as whole processes, alternating, several rounds. The reference is fed trident's tokens
// (the same work) and reports how far each of them is from its own best choice, so a run fails
// unless both chose alike up to round-off.
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

// How many of trident's tokens the reference's best choice matched exactly, out of how many.
struct Agreement {
  int64_t same = 0;
  int64_t total = 0;
  double max_regret = 0.0;
};

Agreement compare_rollouts(const std::string& ours_path, const std::string& theirs_path) {
  const nlohmann::json ours = nlohmann::json::parse(std::ifstream(ours_path));
  const nlohmann::json theirs = nlohmann::json::parse(std::ifstream(theirs_path));
  const nlohmann::json& a = ours.at("tokens");
  const nlohmann::json& b = theirs.at("tokens");
  TRIDENT_CHECK(a.size() == b.size(), "trident generate gave ", a.size(),
                " completions, the reference ", b.size());
  Agreement agreement;
  for (size_t i = 0; i < a.size(); ++i) {
    TRIDENT_CHECK(a[i].size() == b[i].size(), "completion ", i, ": ", a[i].size(),
                  " tokens from trident generate, ", b[i].size(), " from the reference");
    for (size_t j = 0; j < a[i].size(); ++j) {
      agreement.same += a[i][j] == b[i][j] ? 1 : 0;
      ++agreement.total;
    }
  }
  agreement.max_regret = theirs.at("max_regret").get<double>();
  return agreement;
}

}  // namespace

TRIDENT_COMMAND(bench_generate_command, "bench generate",
                "time trident generate (prefill + latent-cache decode) against eager PyTorch, "
                "whole processes") {
  trident::launch::ArgParser parser("bench generate");
  trident::launch::ConfigFlags config_flags;
  config_flags.config = "small";
  config_flags.add_to(parser);
  long long prompts = 8, prompt_length = 64, new_tokens = 64, rounds = 3, threads = 0, seed = 1;
  std::string python = TRIDENT_PYTHON_PATH;
  parser.add_int("--prompts", &prompts, "prompts, decoded together as one batch (8)");
  parser.add_int("--prompt-length", &prompt_length, "tokens per prompt (64)");
  parser.add_int("--new-tokens", &new_tokens, "tokens generated per prompt (64)");
  parser.add_int("--rounds", &rounds, "alternating rounds, each timing both once (3)");
  parser.add_int("--threads", &threads,
                 "threads for both (default: what trident chooses, ops/cpu_threads.h)");
  parser.add_int("--seed", &seed, "seed of the random weights and prompts (1)");
  parser.add_string("--python", &python, "interpreter with torch (/usr/bin/python3)");
  if (!parser.parse(args)) return 0;
  TRIDENT_USER_CHECK(prompts >= 1 && prompt_length >= 1 && new_tokens >= 1 && rounds >= 1,
                     "--prompts, --prompt-length, --new-tokens and --rounds must be ≥ 1, got ",
                     prompts, ", ", prompt_length, ", ", new_tokens, " and ", rounds);
  const trident::config::TridentConfig config = config_flags.load(1);
  const trident::config::ModelConfig& model_config = config.model();
  TRIDENT_USER_CHECK(prompt_length + new_tokens <= model_config.max_position_embeddings(),
                     "--prompt-length + --new-tokens = ", prompt_length + new_tokens,
                     " is beyond model.max_position_embeddings = ",
                     model_config.max_position_embeddings(), " (raise it with --set)");
  if (threads <= 0) threads = trident::ops::cpu_threads().threads;

  const trident::launch::RaceWorkspace workspace(
      "generate", model_config, static_cast<uint64_t>(seed), prompts, prompt_length);
  const std::string ours_out = workspace.path("trident.json");
  const std::string theirs_out = workspace.path("reference.json");
  const std::string ours_command = trident::launch::RaceWorkspace::trident_command(
      threads, "generate" + workspace.model_and_tokens() + " --max-new-tokens " +
                   std::to_string(new_tokens) + " --no-stop --output " + shell_quote(ours_out));
  const std::string theirs_command = trident::launch::RaceWorkspace::reference_command(
      threads, python, "generate_reference.py",
      workspace.model_and_tokens() + " --new-tokens " + std::to_string(new_tokens) + " --follow " +
          shell_quote(ours_out) + " --output " + shell_quote(theirs_out));

  std::printf(
      "model '%s': %lld parameters (MTP not used), %lld prompts × %lld tokens, %lld new tokens "
      "each (greedy, latent cache), %lld threads\n",
      model_config.name().c_str(), static_cast<long long>(workspace.parameters()), prompts,
      prompt_length, new_tokens, threads);
  const std::vector<double> ratios =
      trident::launch::race_processes(ours_command, theirs_command, rounds, "trident generate");
  const Agreement agreement = compare_rollouts(ours_out, theirs_out);
  // The logits are fp32 on both sides, summed in different orders: a token the two would choose
  // differently is a near-tie, apart by a few ulps of a logit. A gap near 1e-3 means other work.
  TRIDENT_CHECK(agreement.max_regret < 1e-3,
                "trident generate chose tokens the reference ranks below its best by up to ",
                agreement.max_regret);
  std::printf(
      "speed-up (PyTorch time / trident generate time): %s; the reference's best token is "
      "trident's at %lld of %lld steps, max logit gap %.2g\n",
      trident::launch::speedup_summary(ratios).c_str(), static_cast<long long>(agreement.same),
      static_cast<long long>(agreement.total), agreement.max_regret);
  return 0;
}
