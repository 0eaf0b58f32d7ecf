#pragma once
// The human-readable progress line: step, loss, tokens/s, lr and an ETA from the mean step time.
#include <chrono>
#include <cstdint>
#include <string>

namespace trident::train {

class ProgressMeter {
 public:
  ProgressMeter(int64_t total_steps, int64_t first_step = 1);
  // Call once per finished step; returns seconds the step took.
  double tick();
  double elapsed_seconds() const;
  // Seconds left, estimated from the mean time of the steps seen so far.
  double eta_seconds(int64_t step) const;
  static std::string format_duration(double seconds);  // "1h02m", "3m05s", "12s"

 private:
  int64_t total_steps_;
  int64_t first_step_;
  int64_t ticks_ = 0;
  std::chrono::steady_clock::time_point start_;
  std::chrono::steady_clock::time_point last_;
};

}  // namespace trident::train
