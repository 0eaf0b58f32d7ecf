#include "runtime/train/precision.h"

#include "runtime/config/dtype_names.h"

namespace trident::train {

models::Precision model_precision(const config::TrainConfig& train) {
  models::Precision precision;
  precision.weights = config::storage_dtype(train.param_dtype(), "train.param_dtype");
  precision.activations = config::storage_dtype(train.activation_dtype(), "train.activation_dtype");
  return precision;
}

DType moment_dtype(const config::TrainConfig& train) {
  return config::storage_dtype(train.moment_dtype(), "train.moment_dtype");
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
