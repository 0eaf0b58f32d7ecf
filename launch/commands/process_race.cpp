#include "launch/commands/process_race.h"

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <random>

#include "launch/commands/subprocess.h"
#include "models/deepseek_v3/model.h"
#include "runtime/core/allocator.h"
#include "runtime/io/hf_weights.h"

namespace trident::launch {

namespace {

std::string threads_prefix(int64_t threads) {
  return "OMP_NUM_THREADS=" + std::to_string(threads) + " ";
}

}  // namespace

RaceWorkspace::RaceWorkspace(const std::string& name, const config::ModelConfig& model,
                             uint64_t seed, int64_t lines, int64_t length)
    : dir_("bench_" + name) {
  std::filesystem::create_directories(dir_.path());
  {
    models::DeepSeekV3Model random(model, seed);
    parameters_ = random.registry().counts().total;
    io::save_hf_weights(random.params(), path("model"));
  }
  // The model's blocks go back to the system: the processes timed next need the memory.
  Allocator::instance(Device::CPU).release_cached();

  std::mt19937_64 rng(seed);
  std::uniform_int_distribution<int64_t> token(0, model.vocab_size() - 1);
  std::ofstream out(path("tokens.txt"));
  for (int64_t line = 0; line < lines; ++line) {
    for (int64_t t = 0; t < length; ++t) out << (t > 0 ? " " : "") << token(rng);
    out << "\n";
  }
  TRIDENT_CHECK(out.good(), "could not write the benchmark's tokens to ", path("tokens.txt"));
}

std::string RaceWorkspace::model_and_tokens() const {
  return " --hf-dir " + shell_quote(path("model")) + " --tokens " + shell_quote(path("tokens.txt"));
}

std::string RaceWorkspace::trident_command(int64_t threads, const std::string& args) {
  return threads_prefix(threads) +
         shell_quote(std::filesystem::read_symlink("/proc/self/exe").string()) + " " + args;
}

std::string RaceWorkspace::reference_command(int64_t threads, const std::string& python,
                                             const std::string& script, const std::string& args) {
  return threads_prefix(threads) + shell_quote(python) + " " +
         shell_quote(std::string(TRIDENT_SOURCE_PATH) + "/tests/reference/" + script) + " " + args +
         " --threads " + std::to_string(threads);
}

std::vector<double> race_processes(const std::string& ours, const std::string& theirs,
                                   int64_t rounds, const std::string& ours_label) {
  std::printf("%-6s %18s %16s %10s\n", "round", (ours_label + " s").c_str(), "PyTorch s",
              "speed-up");
  std::vector<double> ratios;
  for (int64_t round = 1; round <= rounds; ++round) {
    const double ours_s = run_process(ours).seconds;
    const double theirs_s = run_process(theirs).seconds;
    ratios.push_back(theirs_s / ours_s);
    std::printf("%-6lld %18.3f %16.3f %9.2fx\n", static_cast<long long>(round), ours_s, theirs_s,
                theirs_s / ours_s);
    std::fflush(stdout);
  }
  return ratios;
}

std::string speedup_summary(std::vector<double> ratios) {
  std::sort(ratios.begin(), ratios.end());
  char text[96];
  std::snprintf(text, sizeof(text), "median %.2fx, range %.2f–%.2fx", ratios[ratios.size() / 2],
                ratios.front(), ratios.back());
  return text;
}

}  // namespace trident::launch
