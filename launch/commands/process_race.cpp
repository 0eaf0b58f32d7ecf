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

int64_t write_random_hf_model(const config::ModelConfig& model, uint64_t seed,
                              const std::filesystem::path& dir) {
  int64_t parameters = 0;
  {
    models::DeepSeekV3Model random(model, seed);
    parameters = random.registry().counts().total;
    io::save_hf_weights(random.params(), dir.string());
  }
  Allocator::instance(Device::CPU).release_cached();
  return parameters;
}

void write_random_token_lines(const std::filesystem::path& path, int64_t lines, int64_t length,
                              int64_t vocab, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_int_distribution<int64_t> token(0, vocab - 1);
  std::ofstream out(path);
  for (int64_t line = 0; line < lines; ++line) {
    for (int64_t t = 0; t < length; ++t) out << (t > 0 ? " " : "") << token(rng);
    out << "\n";
  }
  TRIDENT_CHECK(out.good(), "could not write the benchmark's tokens to ", path.string());
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
