#pragma once
// Held-out greedy evaluation on the arithmetic eval split: accuracy and format rate.
#include <cstdint>
#include <string>
#include <vector>

#include "models/deepseek_v3/model.h"
#include "runtime/io/synthetic_task.h"
#include "runtime/train/grpo/generate.h"
#include "runtime/train/grpo/staged_decoder.h"

namespace trident::train::grpo {

// One problem of an evaluation: what was asked, what was generated and how it scored.
struct EvalSample {
  std::string prompt;
  std::string answer;               // the expected answer
  std::vector<int32_t> completion;  // generated tokens (a final EOS included)
  bool correct = false;
  bool format_ok = false;
};

struct EvalResult {
  int64_t prompts = 0;
  double accuracy = 0.0;
  double format_rate = 0.0;
  double completion_length = 0.0;
  std::vector<EvalSample> samples;  // in problem order
};

// Problems [0, count) of the eval split of `seed`, decoded greedily with `sampling` (its
// temperature is forced to 0). Under expert parallelism every EP rank decodes the same problems
// in lock step (generate.h).
EvalResult evaluate_arithmetic(models::DeepSeekV3Model& model, uint64_t seed, int64_t count,
                               const io::ArithmeticOptions& task, SamplingOptions sampling,
                               ForwardLockstep* lockstep = nullptr);
// The same through a decoder's pipeline stages: every rank gets the same result.
EvalResult evaluate_arithmetic(StagedDecoder& decoder, uint64_t seed, int64_t count,
                               const io::ArithmeticOptions& task, SamplingOptions sampling,
                               ForwardLockstep* lockstep = nullptr);

}  // namespace trident::train::grpo
