#include "launch/commands/subprocess.h"

#include <sys/wait.h>

#include <array>
#include <chrono>
#include <cstdio>

#include "runtime/core/error.h"

namespace trident::launch {

ProcessResult run_process(const std::string& command) {
  ProcessResult result;
  const auto start = std::chrono::steady_clock::now();
  FILE* pipe = popen(command.c_str(), "r");
  TRIDENT_CHECK_IO(pipe != nullptr, "cannot run: ", command);
  std::array<char, 4096> buffer{};
  size_t read = 0;
  while ((read = std::fread(buffer.data(), 1, buffer.size(), pipe)) > 0) {
    result.output.append(buffer.data(), read);
  }
  const int status = pclose(pipe);
  result.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  TRIDENT_CHECK_IO(status != -1 && WIFEXITED(status) && WEXITSTATUS(status) == 0,
                   "this command failed (exit status ",
                   WIFEXITED(status) ? WEXITSTATUS(status) : -1, "): ", command);
  return result;
}

std::string shell_quote(const std::string& text) {
  std::string quoted = "'";
  for (const char c : text) {
    if (c == '\'') {
      quoted += "'\\''";
    } else {
      quoted += c;
    }
  }
  return quoted + "'";
}

}  // namespace trident::launch
