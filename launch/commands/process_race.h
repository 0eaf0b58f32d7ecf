#pragma once
// What `trident bench score` and `trident bench generate` share: a model with random weights in
// the Hugging Face layout, random token lines, and rounds that time trident and the PyTorch
// reference as whole processes (start-up, loading and writing included), alternately.
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "runtime/config/config.h"

namespace trident::launch {

// A model with random weights (`seed`) saved in the Hugging Face layout into `dir`; returns its
// parameter count. The allocator's cached blocks go back to the system afterwards: the processes
// timed next need the memory.
int64_t write_random_hf_model(const config::ModelConfig& model, uint64_t seed,
                              const std::filesystem::path& dir);

// `lines` lines of `length` random ids in [0, vocab), space-separated.
void write_random_token_lines(const std::filesystem::path& path, int64_t lines, int64_t length,
                              int64_t vocab, uint64_t seed);

// Times `ours`, then `theirs`, once per round, printing "round, ours s, PyTorch s, speed-up" rows
// under a header whose first time column is `ours_label`; returns the speed-ups (PyTorch time
// over ours) in round order. A command that fails is an error naming it.
std::vector<double> race_processes(const std::string& ours, const std::string& theirs,
                                   int64_t rounds, const std::string& ours_label);

// "median 2.31x, range 2.10–2.52x"
std::string speedup_summary(std::vector<double> ratios);

}  // namespace trident::launch
