#include "runtime/config/dtype_names.h"

#include "runtime/core/error.h"

namespace trident::config {

const std::vector<std::string>& storage_dtype_names() {
  static const std::vector<std::string> names = {"float32", "bfloat16"};
  return names;
}

DType storage_dtype(const std::string& name, const char* field) {
  if (name == "float32") return DType::F32;
  if (name == "bfloat16") return DType::BF16;
  std::string valid;
  for (const std::string& choice : storage_dtype_names()) {
    valid += (valid.empty() ? "" : ", ") + choice;
  }
  TRIDENT_USER_FAIL(field, " = \"", name, "\" is not valid; valid values: ", valid);
}

}  // namespace trident::config
