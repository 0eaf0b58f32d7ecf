#pragma once
// The run's mixed precision (docs/precision.md) from its config: what the model computes in
// (train.param_dtype, train.activation_dtype) and how AdamW keeps its moments
// (train.moment_dtype). Master weights, gradients and the loss are fp32 in every setting.
#include <string>

#include "models/deepseek_v3/parameters.h"
#include "runtime/config/trident.pb.h"
#include "runtime/core/dtype.h"

namespace trident::train {

models::Precision model_precision(const config::TrainConfig& train);
DType moment_dtype(const config::TrainConfig& train);
// The start-up log's line: "precision: weights bf16 (fp32 masters), activations bf16, …".
std::string precision_summary(const config::TrainConfig& train);

}  // namespace trident::train
