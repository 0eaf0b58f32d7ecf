#pragma once
// The `trident` command line: one binary, subcommands registered from launch/commands/*.cpp.
#include <functional>
#include <string>
#include <vector>

namespace trident::launch {

using Args = std::vector<std::string>;

struct Command {
  std::string name;     // "pretrain"
  std::string summary;  // one line for `trident help`
  std::function<int(const Args&)> run;
};

void register_command(Command command);
const std::vector<Command>& commands();

// Registers a command at static-initialisation time (sources are linked into the binary).
struct CommandRegistrar {
  CommandRegistrar(const char* name, const char* summary, std::function<int(const Args&)> run) {
    register_command(Command{name, summary, std::move(run)});
  }
};

// A small flag parser. Flags look like --name value or --name=value; unknown flags and
// missing values are a UserError listing the valid flags.
class ArgParser {
 public:
  explicit ArgParser(std::string command) : command_(std::move(command)) {}
  void add_string(const std::string& flag, std::string* out, const std::string& help);
  void add_int(const std::string& flag, long long* out, const std::string& help);
  void add_double(const std::string& flag, double* out, const std::string& help);
  void add_bool(const std::string& flag, bool* out, const std::string& help);  // presence = true
  void add_repeated(const std::string& flag, std::vector<std::string>* out, const std::string& help);
  // Returns false if --help was given (usage already printed).
  bool parse(const Args& args);
  std::string usage() const;

 private:
  enum class Kind { String, Int, Double, Bool, Repeated };
  struct Flag {
    std::string name;
    Kind kind;
    void* out;
    std::string help;
  };
  std::string command_;
  std::vector<Flag> flags_;
};

}  // namespace trident::launch

#define TRIDENT_COMMAND(ident, name, summary)                                         \
  static int ident(const ::trident::launch::Args& args);                              \
  static ::trident::launch::CommandRegistrar ident##_registrar(name, summary, ident); \
  static int ident(const ::trident::launch::Args& args)
