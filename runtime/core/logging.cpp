#include "runtime/core/logging.h"

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <mutex>

namespace trident {

namespace {
std::mutex g_log_mutex;
LogSettings g_settings = [] {
  LogSettings settings;
  if (const char* level = std::getenv("TRIDENT_LOG_LEVEL")) settings.level = parse_log_level(level);
  return settings;
}();

const char* level_tag(LogLevel level) {
  switch (level) {
    case LogLevel::Debug: return "D";
    case LogLevel::Info: return "I";
    case LogLevel::Warn: return "W";
    case LogLevel::Error: return "E";
    case LogLevel::Off: return "-";
  }
  return "?";
}
}  // namespace

void configure_logging(const LogSettings& settings) {
  std::lock_guard<std::mutex> lock(g_log_mutex);
  g_settings = settings;
}

LogSettings logging_settings() {
  std::lock_guard<std::mutex> lock(g_log_mutex);
  return g_settings;
}

LogLevel parse_log_level(const std::string& name) {
  if (name == "debug") return LogLevel::Debug;
  if (name == "info") return LogLevel::Info;
  if (name == "warn") return LogLevel::Warn;
  if (name == "error") return LogLevel::Error;
  if (name == "off") return LogLevel::Off;
  TRIDENT_USER_FAIL("log level '", name, "' is not valid; use one of debug, info, warn, error, off");
}

void log_message(LogLevel level, const std::string& message) {
  std::lock_guard<std::mutex> lock(g_log_mutex);
  if (level < g_settings.level) return;
  const int rank = current_rank();
  if (level <= LogLevel::Info && !g_settings.all_ranks && rank != 0) return;
  const auto now = std::chrono::system_clock::now();
  const std::time_t seconds = std::chrono::system_clock::to_time_t(now);
  std::tm local{};
  localtime_r(&seconds, &local);
  char stamp[16];
  std::strftime(stamp, sizeof(stamp), "%H:%M:%S", &local);
  FILE* stream = level >= LogLevel::Warn ? stderr : stdout;
  std::fprintf(stream, "%s %s [rank %d] %s\n", stamp, level_tag(level), rank, message.c_str());
  std::fflush(stream);
}

}  // namespace trident
