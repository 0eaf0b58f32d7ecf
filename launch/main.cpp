// `trident <command> [flags]`: dispatches to the registered subcommands. A user mistake
// prints one line and exits 2; an internal, MPI, HDF5 or CUDA failure exits 1.
#include <unistd.h>

#include <csignal>
#include <cstdio>
#include <exception>
#include <string>

#include "launch/cli.h"
#include "launch/rank_threads.h"
#include "runtime/core/error.h"
#include "runtime/io/checkpoint_hdf5.h"

namespace {
void print_help() {
  std::puts("usage: trident <command> [flags]   (trident <command> --help for its flags)\n");
  std::puts("commands:");
  for (const auto& command : trident::launch::commands()) {
    std::printf("  %-12s %s\n", command.name.c_str(), command.summary.c_str());
  }
}
// Runs a command and turns its failure into one line and an exit status: 2 for a user mistake
// (one line naming what is wrong, without internal source locations), 1 otherwise.
template <typename Run>
int finish(const std::string& name, Run&& run) {
  int status = 0;
  try {
    status = run();
  } catch (const trident::UserError& e) {
    std::fprintf(stderr, "trident %s: error: %s\n", name.c_str(), e.detail().c_str());
    status = 2;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "trident %s: %s\n", name.c_str(), e.what());
    status = 1;
  }
  if (trident::io::h5::file_close_failed()) {
    // HDF5's exit handler would crash on the file it could not close (checkpoint_hdf5.h).
    std::fflush(stdout);
    std::fflush(stderr);
    _exit(status != 0 ? status : 1);
  }
  return status;
}

}  // namespace

int main(int argc, char** argv) {
  // A write past the file size limit (ulimit -f) then fails with EFBIG, which the writers turn
  // into a message saying so, instead of the signal ending the process without one.
  std::signal(SIGXFSZ, SIG_IGN);
  if (argc < 2 || std::string(argv[1]) == "help" || std::string(argv[1]) == "--help") {
    print_help();
    return argc < 2 ? 2 : 0;
  }
  // Two-word commands ("bench comm") take precedence over one-word ones.
  const bool two_words =
      argc >= 3 && [&] {
        const std::string candidate = std::string(argv[1]) + " " + argv[2];
        for (const auto& command : trident::launch::commands()) {
          if (command.name == candidate) return true;
        }
        return false;
      }();
  const std::string name = two_words ? std::string(argv[1]) + " " + argv[2] : argv[1];
  // No more busy threads than cores from the first op on; commands that build a mesh refine
  // this from every rank's affinity mask (launch/rank_threads.h).
  trident::ops::configure_cpu_threads(trident::launch::local_ranks_from_environment());
  trident::launch::Args args(argv + (two_words ? 3 : 2), argv + argc);
  for (const auto& command : trident::launch::commands()) {
    if (command.name != name) continue;
    return finish(name, [&] { return command.run(args); });
  }
  std::fprintf(stderr, "trident: unknown command '%s'\n\n", name.c_str());
  print_help();
  return 2;
}
