// `trident <command> [flags]`: dispatches to the registered subcommands. A user mistake
// prints one line and exits 2; an internal, MPI, HDF5 or CUDA failure exits 1.
#include <cstdio>
#include <exception>
#include <string>

#include "launch/cli.h"
#include "runtime/core/error.h"

namespace {
void print_help() {
  std::puts("usage: trident <command> [flags]   (trident <command> --help for its flags)\n");
  std::puts("commands:");
  for (const auto& command : trident::launch::commands()) {
    std::printf("  %-12s %s\n", command.name.c_str(), command.summary.c_str());
  }
}
}  // namespace

int main(int argc, char** argv) {
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
  trident::launch::Args args(argv + (two_words ? 3 : 2), argv + argc);
  for (const auto& command : trident::launch::commands()) {
    if (command.name != name) continue;
    try {
      return command.run(args);
    } catch (const trident::UserError& e) {
      // A user mistake: one line naming what is wrong, without internal source locations.
      std::fprintf(stderr, "trident %s: error: %s\n", name.c_str(), e.detail().c_str());
      return 2;
    } catch (const std::exception& e) {
      std::fprintf(stderr, "trident %s: %s\n", name.c_str(), e.what());
      return 1;
    }
  }
  std::fprintf(stderr, "trident: unknown command '%s'\n\n", name.c_str());
  print_help();
  return 2;
}
