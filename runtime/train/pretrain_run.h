#pragma once
// A whole pretraining / SFT run: the step loop with the progress line, JSONL metrics,
// TensorBoard scalars, periodic held-out evaluation and the final weight export.
#include <string>

#include "runtime/config/trident.pb.h"

namespace trident::train {

struct PretrainOptions {
  std::string init_hf_dir;  // start from these HF weights instead of the random init
  std::string save_hf_dir;  // export the final weights here (config.json + safetensors)
  int64_t eval_batches = 2;
};

struct PretrainSummary {
  int64_t steps = 0;
  double first_loss = 0.0;
  double last_loss = 0.0;
  double first_eval_loss = 0.0;  // before training (0 if no held-out data)
  double last_eval_loss = 0.0;
  double seconds = 0.0;
  double tokens_per_second = 0.0;
};

PretrainSummary run_pretrain(const config::TridentConfig& config, const PretrainOptions& options);

}  // namespace trident::train
