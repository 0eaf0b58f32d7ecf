#pragma once
// Validation collects every problem before reporting, so a user fixing a config sees all that
// is wrong at once instead of one message per run.

#include <initializer_list>
#include <string>
#include <vector>

#include "runtime/config/trident.pb.h"
#include "runtime/core/error.h"

namespace trident::config::detail {

class Problems {
 public:
  template <typename... Args>
  void require(bool ok, const Args&... message) {
    if (!ok) list_.push_back(::trident::detail::concat(message...));
  }

  // field = "value" must be one of `valid` ("" is shown as "" so an empty choice is visible).
  void require_one_of(const std::string& field, const std::string& value,
                      std::initializer_list<const char*> valid);
  void require_one_of(const std::string& field, const std::string& value,
                      const std::vector<std::string>& valid);

  const std::vector<std::string>& list() const { return list_; }

 private:
  std::vector<std::string> list_;
};

void check_model(const ModelConfig& model, Problems& problems);
void check_layout(const TridentConfig& config, int world_size, Problems& problems);
void check_runnable_layout(const TridentConfig& config, Problems& problems);
void check_run(const TridentConfig& config, Problems& problems);

}  // namespace trident::config::detail
