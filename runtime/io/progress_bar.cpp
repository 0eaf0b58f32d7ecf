#include "runtime/io/progress_bar.h"

#include <unistd.h>

#include <algorithm>
#include <cstdio>

namespace trident::io {

namespace {
constexpr int kWidth = 30;
constexpr auto kRedraw = std::chrono::milliseconds(250);

std::string megabytes(uint64_t bytes) {
  char text[32];
  std::snprintf(text, sizeof(text), "%.1f MB", static_cast<double>(bytes) / 1e6);
  return text;
}
}  // namespace

ProgressBar::ProgressBar(std::string label, uint64_t total)
    : label_(std::move(label)), total_(total), terminal_(::isatty(STDERR_FILENO) != 0) {}

void ProgressBar::update(uint64_t done, const std::function<std::string()>& detail) {
  if (terminal_) {
    const auto now = std::chrono::steady_clock::now();
    if (now - last_draw_ < kRedraw) return;
    last_draw_ = now;
    draw(done, detail(), false);
    return;
  }
  if (total_ == 0) return;
  const int tenth = static_cast<int>(10 * static_cast<double>(done) / static_cast<double>(total_));
  if (tenth <= last_tenth_ || tenth >= 10) return;
  last_tenth_ = tenth;
  draw(done, detail(), false);
}

void ProgressBar::finish(uint64_t done, const std::string& detail) { draw(done, detail, true); }

void ProgressBar::draw(uint64_t done, const std::string& detail, bool final) {
  std::string bar;
  if (total_ > 0) {
    const double fraction = std::min(1.0, static_cast<double>(done) / static_cast<double>(total_));
    const int filled = static_cast<int>(fraction * kWidth);
    bar.reserve(kWidth + 48);
    bar.push_back('[');
    bar.append(static_cast<size_t>(filled), '#');
    bar.append(static_cast<size_t>(kWidth - filled), '.');
    bar.append("] ");
    char percent[16];
    std::snprintf(percent, sizeof(percent), "%3.0f%% ", 100.0 * fraction);
    bar += percent;
    bar += megabytes(done) + " / " + megabytes(total_);
  } else {
    bar = megabytes(done);
  }
  std::string line = label_;
  line.append(" ").append(bar);
  if (!detail.empty()) line.append(", ").append(detail);
  if (terminal_) {
    std::fprintf(stderr, "\r%s\033[K%s", line.c_str(), final ? "\n" : "");
  } else {
    std::fprintf(stderr, "%s\n", line.c_str());
  }
  std::fflush(stderr);
}

}  // namespace trident::io
