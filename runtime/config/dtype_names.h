#pragma once
// The element types a config may name for stored tensors (train.param_dtype,
// train.activation_dtype, train.moment_dtype): one parser for validation, the memory planner
// and training, so the three can never disagree on what a name means.
#include <string>
#include <vector>

#include "runtime/core/dtype.h"

namespace trident::config {

// "float32", "bfloat16": in the order error messages list them.
const std::vector<std::string>& storage_dtype_names();

// "float32" -> F32, "bfloat16" -> BF16; anything else is a UserError naming `field`, the value
// and the valid values.
DType storage_dtype(const std::string& name, const char* field);

}  // namespace trident::config
