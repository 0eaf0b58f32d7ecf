#pragma once
// Child processes of the benchmark commands: a command line run through the shell, its standard
// output captured, its wall time measured. A failure (cannot start, non-zero exit) is an error
// naming the command.
#include <string>

namespace trident::launch {

struct ProcessResult {
  std::string output;  // standard output
  double seconds = 0;  // wall time, start to exit
};

// Runs `command` with /bin/sh; its standard error passes through.
ProcessResult run_process(const std::string& command);

// `text` quoted for the shell.
std::string shell_quote(const std::string& text);

}  // namespace trident::launch
