#include "launch/cli.h"

#include <cstdio>
#include <cstdlib>
#include <sstream>

#include "runtime/core/error.h"

namespace trident::launch {

namespace {
std::vector<Command>& registry() {
  static std::vector<Command> commands;
  return commands;
}
}  // namespace

void register_command(Command command) { registry().push_back(std::move(command)); }
const std::vector<Command>& commands() { return registry(); }

void ArgParser::add_string(const std::string& flag, std::string* out, const std::string& help) {
  flags_.push_back({flag, Kind::String, out, help});
}
void ArgParser::add_int(const std::string& flag, long long* out, const std::string& help) {
  flags_.push_back({flag, Kind::Int, out, help});
}
void ArgParser::add_double(const std::string& flag, double* out, const std::string& help) {
  flags_.push_back({flag, Kind::Double, out, help});
}
void ArgParser::add_bool(const std::string& flag, bool* out, const std::string& help) {
  flags_.push_back({flag, Kind::Bool, out, help});
}
void ArgParser::add_repeated(const std::string& flag, std::vector<std::string>* out,
                             const std::string& help) {
  flags_.push_back({flag, Kind::Repeated, out, help});
}

std::string ArgParser::usage() const {
  std::ostringstream out;
  out << "usage: trident " << command_ << " [flags]\n";
  for (const Flag& flag : flags_) {
    out << "  " << flag.name << (flag.kind == Kind::Bool ? "" : " VALUE") << "\n      " << flag.help
        << "\n";
  }
  return out.str();
}

bool ArgParser::parse(const Args& args) {
  for (size_t i = 0; i < args.size(); ++i) {
    std::string name = args[i];
    if (name == "--help" || name == "-h") {
      std::fputs(usage().c_str(), stdout);
      return false;
    }
    std::string value;
    bool has_value = false;
    if (auto eq = name.find('='); eq != std::string::npos && name.rfind("--", 0) == 0) {
      value = name.substr(eq + 1);
      name = name.substr(0, eq);
      has_value = true;
    }
    const Flag* match = nullptr;
    for (const Flag& flag : flags_) {
      if (flag.name == name) match = &flag;
    }
    if (match == nullptr) {
      std::ostringstream valid;
      for (const Flag& flag : flags_) valid << " " << flag.name;
      TRIDENT_USER_FAIL("unknown argument '", args[i],
                        "'; valid flags:", valid.str());
    }
    if (match->kind == Kind::Bool) {
      TRIDENT_USER_CHECK(!has_value || value == "true" || value == "false", name,
                         " takes no value (or =true/=false), got '", value, "'");
      *static_cast<bool*>(match->out) = !has_value || value == "true";
      continue;
    }
    if (!has_value) {
      TRIDENT_USER_CHECK(i + 1 < args.size(), name, " needs a value");
      value = args[++i];
    }
    char* end = nullptr;
    switch (match->kind) {
      case Kind::String: *static_cast<std::string*>(match->out) = value; break;
      case Kind::Repeated: static_cast<std::vector<std::string>*>(match->out)->push_back(value); break;
      case Kind::Int: {
        const long long parsed = std::strtoll(value.c_str(), &end, 10);
        TRIDENT_USER_CHECK(end && *end == '\0' && !value.empty(), name, " needs an integer, got '", value, "'");
        *static_cast<long long*>(match->out) = parsed;
        break;
      }
      case Kind::Double: {
        const double parsed = std::strtod(value.c_str(), &end);
        TRIDENT_USER_CHECK(end && *end == '\0' && !value.empty(), name, " needs a number, got '", value, "'");
        *static_cast<double*>(match->out) = parsed;
        break;
      }
      case Kind::Bool: break;
    }
  }
  return true;
}

}  // namespace trident::launch
