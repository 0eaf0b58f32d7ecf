#include "runtime/train/precision.h"

#include "runtime/core/error.h"

namespace trident::train {

DType dtype_from_name(const std::string& name, const char* field) {
  if (name == "float32") return DType::F32;
  if (name == "bfloat16") return DType::BF16;
  TRIDENT_USER_FAIL(field, " = \"", name, "\" is not valid; valid values: float32, bfloat16");
}

models::Precision model_precision(const config::TrainConfig& train) {
  models::Precision precision;
  precision.weights = dtype_from_name(train.param_dtype(), "train.param_dtype");
  precision.activations = dtype_from_name(train.activation_dtype(), "train.activation_dtype");
  return precision;
}

DType moment_dtype(const config::TrainConfig& train) {
  return dtype_from_name(train.moment_dtype(), "train.moment_dtype");
}

std::string precision_summary(const config::TrainConfig& train) {
  const models::Precision model = model_precision(train);
  const auto name = [](DType dtype) { return dtype == DType::BF16 ? "bf16" : "fp32"; };
  return std::string("precision: weights ") + name(model.weights) +
         " (fp32 masters), activations " + name(model.activations) + ", AdamW moments " +
         name(moment_dtype(train)) +
         "; gradients, softmax, norm statistics, router scores and loss fp32";
}

}  // namespace trident::train
