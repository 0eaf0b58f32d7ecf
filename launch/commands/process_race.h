#pragma once
// What `trident bench score` and `trident bench generate` share: a model with random weights in
// the Hugging Face layout, random token lines, and rounds that time trident and the PyTorch
// reference as whole processes (start-up, loading and writing included), alternately.
#include <cstdint>
#include <string>
#include <vector>

#include "launch/commands/scratch_dir.h"
#include "runtime/config/config.h"

namespace trident::launch {

// A temporary folder for one benchmark: a model with random weights (`seed`) in the Hugging Face
// layout (model/) and `lines` lines of `length` random token ids (tokens.txt), removed with the
// object (ScratchDir).
class RaceWorkspace {
 public:
  RaceWorkspace(const std::string& name, const config::ModelConfig& model, uint64_t seed,
                int64_t lines, int64_t length);
  RaceWorkspace(const RaceWorkspace&) = delete;
  RaceWorkspace& operator=(const RaceWorkspace&) = delete;

  int64_t parameters() const { return parameters_; }
  // A file in the folder, and the arguments naming the model and the tokens (shell-quoted).
  std::string path(const std::string& file) const { return dir_.file(file); }
  std::string model_and_tokens() const;

  // `trident ARGS` and `PYTHON tests/reference/SCRIPT ARGS`, both with OMP_NUM_THREADS=threads.
  static std::string trident_command(int64_t threads, const std::string& args);
  static std::string reference_command(int64_t threads, const std::string& python,
                                       const std::string& script, const std::string& args);

 private:
  ScratchDir dir_;
  int64_t parameters_ = 0;
};

// Times `ours`, then `theirs`, once per round, printing "round, ours s, PyTorch s, speed-up" rows
// under a header whose first time column is `ours_label`; returns the speed-ups (PyTorch time
// over ours) in round order. A command that fails is an error naming it.
std::vector<double> race_processes(const std::string& ours, const std::string& theirs,
                                   int64_t rounds, const std::string& ours_label);

// "median 2.31x, range 2.10–2.52x"
std::string speedup_summary(std::vector<double> ratios);

}  // namespace trident::launch
