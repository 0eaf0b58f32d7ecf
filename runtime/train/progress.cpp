#include "runtime/train/progress.h"

#include <cmath>
#include <cstdio>

namespace trident::train {

ProgressMeter::ProgressMeter(int64_t total_steps, int64_t first_step)
    : total_steps_(total_steps),
      first_step_(first_step),
      start_(std::chrono::steady_clock::now()),
      last_(start_) {}

double ProgressMeter::tick() {
  const auto now = std::chrono::steady_clock::now();
  const double seconds = std::chrono::duration<double>(now - last_).count();
  last_ = now;
  ++ticks_;
  return seconds;
}

double ProgressMeter::elapsed_seconds() const {
  return std::chrono::duration<double>(last_ - start_).count();
}

double ProgressMeter::eta_seconds(int64_t step) const {
  if (ticks_ == 0) return 0.0;
  const double mean = elapsed_seconds() / static_cast<double>(ticks_);
  return mean * static_cast<double>(std::max<int64_t>(0, total_steps_ - step));
}

std::string ProgressMeter::format_duration(double seconds) {
  const long total = std::lround(std::max(0.0, seconds));
  char buffer[32];
  if (total >= 3600) {
    std::snprintf(buffer, sizeof(buffer), "%ldh%02ldm", total / 3600, (total % 3600) / 60);
  } else if (total >= 60) {
    std::snprintf(buffer, sizeof(buffer), "%ldm%02lds", total / 60, total % 60);
  } else {
    std::snprintf(buffer, sizeof(buffer), "%lds", total);
  }
  return buffer;
}

}  // namespace trident::train
