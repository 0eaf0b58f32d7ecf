#include "runtime/config/dtype_names.h"

#include <utility>

#include "runtime/core/error.h"

namespace trident::config {
namespace {
// The one list: name and element type, in the order error messages give them.
const std::pair<const char*, DType> kStorageDTypes[] = {{"float32", DType::F32},
                                                        {"bfloat16", DType::BF16}};
}  // namespace

const std::vector<std::string>& storage_dtype_names() {
  static const std::vector<std::string> names = [] {
    std::vector<std::string> out;
    for (const auto& [name, dtype] : kStorageDTypes) out.emplace_back(name);
    return out;
  }();
  return names;
}

DType storage_dtype(const std::string& name, const char* field) {
  for (const auto& [choice, dtype] : kStorageDTypes) {
    if (name == choice) return dtype;
  }
  std::string valid;
  for (const std::string& choice : storage_dtype_names()) {
    valid += (valid.empty() ? "" : ", ") + choice;
  }
  TRIDENT_USER_FAIL(field, " = \"", name, "\" is not valid; valid values: ", valid);
}

}  // namespace trident::config
