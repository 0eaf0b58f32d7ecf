#include "launch/commands/subprocess.h"

#include <sys/wait.h>

#include <array>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <string>

#include "runtime/core/error.h"

namespace trident::launch {
namespace {

// The shell reports a child killed by signal N as exit status 128 + N. SIGKILL is what the
// kernel's out-of-memory killer sends, the usual end of a reference model too large for the
// machine; say so rather than leave a bare 137.
std::string how_it_ended(int status) {
  if (status == -1) return "could not be waited for";
  int signal = 0;
  if (WIFSIGNALED(status)) signal = WTERMSIG(status);
  if (WIFEXITED(status) && WEXITSTATUS(status) > 128) signal = WEXITSTATUS(status) - 128;
  if (signal == SIGKILL) {
    return "killed by SIGKILL; if no one sent it, the kernel's out-of-memory killer did: see "
           "`dmesg` and the memory the command needs";
  }
  if (signal != 0) return ::trident::detail::concat("killed by signal ", signal);
  return ::trident::detail::concat("exit status ", WIFEXITED(status) ? WEXITSTATUS(status) : -1);
}

}  // namespace

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
                   "this command failed (", how_it_ended(status), "): ", command);
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
