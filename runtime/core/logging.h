#pragma once
// Rank-aware logger: every line carries the rank, so interleaved mpirun output stays readable.
// By default only rank 0 prints INFO; warnings and errors print on every rank.
// This is the one piece of global mutable state the runtime allows.

#include <string>

#include "runtime/core/error.h"

namespace trident {

enum class LogLevel { Debug = 0, Info = 1, Warn = 2, Error = 3, Off = 4 };

struct LogSettings {
  LogLevel level = LogLevel::Info;
  bool all_ranks = false;  // INFO/DEBUG on every rank instead of rank 0 only
};

void configure_logging(const LogSettings& settings);
LogSettings logging_settings();
LogLevel parse_log_level(const std::string& name);  // "debug" | "info" | "warn" | "error" | "off"
void log_message(LogLevel level, const std::string& message);

}  // namespace trident

#define TLOG_DEBUG(...) ::trident::log_message(::trident::LogLevel::Debug, ::trident::detail::concat(__VA_ARGS__))
#define TLOG_INFO(...) ::trident::log_message(::trident::LogLevel::Info, ::trident::detail::concat(__VA_ARGS__))
#define TLOG_WARN(...) ::trident::log_message(::trident::LogLevel::Warn, ::trident::detail::concat(__VA_ARGS__))
#define TLOG_ERROR(...) ::trident::log_message(::trident::LogLevel::Error, ::trident::detail::concat(__VA_ARGS__))
