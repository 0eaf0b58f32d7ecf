#pragma once
// A progress bar on stderr for long single-process jobs (`trident data`): on a terminal it is
// redrawn in place a few times a second; otherwise (a log file) a line is printed each time
// another tenth of the work is done, so logs stay short.
#include <chrono>
#include <cstdint>
#include <functional>
#include <string>

namespace trident::io {

class ProgressBar {
 public:
  // total = 0: unknown (input from a pipe): the bar shows the amount done without a fraction.
  ProgressBar(std::string label, uint64_t total);
  // `done` of `total` units (bytes); `detail()` is appended (documents, tokens, rate). Cheap
  // when nothing is drawn: detail is called only for a redraw.
  void update(uint64_t done, const std::function<std::string()>& detail);
  // Draws the final state and ends the line.
  void finish(uint64_t done, const std::string& detail);

 private:
  void draw(uint64_t done, const std::string& detail, bool final);

  std::string label_;
  uint64_t total_;
  bool terminal_;
  std::chrono::steady_clock::time_point last_draw_{};
  int last_tenth_ = 0;
};

}  // namespace trident::io
