#include "runtime/config/config.h"
#include "runtime/config/problems.h"

namespace trident::config {

namespace detail {
void Problems::require_one_of(const std::string& field, const std::string& value,
                              std::initializer_list<const char*> valid) {
  require_one_of(field, value, std::vector<std::string>(valid.begin(), valid.end()));
}

void Problems::require_one_of(const std::string& field, const std::string& value,
                              const std::vector<std::string>& valid) {
  for (const std::string& choice : valid) {
    if (value == choice) return;
  }
  std::string names;
  for (const std::string& choice : valid) {
    if (!names.empty()) names += ", ";
    names += choice.empty() ? "\"\"" : choice;
  }
  list_.push_back(field + " = \"" + value + "\" is not valid; valid values: " + names);
}
}  // namespace detail

namespace {
[[noreturn]] void fail_with(const std::vector<std::string>& list, const char* what) {
  if (list.size() == 1) TRIDENT_USER_FAIL(what, ": ", list.front());
  std::string message = std::string(what) + " (" + std::to_string(list.size()) + " problems):";
  for (const std::string& problem : list) message += "\n  - " + problem;
  TRIDENT_USER_FAIL(message);
}
}  // namespace

void validate(const TridentConfig& config, int world_size) {
  detail::Problems problems;
  problems.require(world_size >= 0, "the number of ranks must be ≥ 0, got ", world_size);
  detail::check_model(config.model(), problems);
  detail::check_layout(config, world_size, problems);
  detail::check_run(config, problems);
  if (!problems.list().empty()) fail_with(problems.list(), "invalid config");
}

void check_runnable_layout(const TridentConfig& config) {
  detail::Problems problems;
  detail::check_runnable_layout(config, problems);
  if (!problems.list().empty()) fail_with(problems.list(), "layout not supported");
}

}  // namespace trident::config
