#include "runtime/train/grpo/evaluate.h"

#include <functional>

#include "runtime/io/tokenizer.h"
#include "runtime/train/grpo/pipeline_generate.h"
#include "runtime/train/grpo/rewards.h"

namespace trident::train::grpo {

namespace {
using Generator = std::function<std::vector<Completion>(const std::vector<GenerationRequest>&,
                                                        const SamplingOptions&)>;

EvalResult evaluate_with(const Generator& generate_completions, uint64_t seed, int64_t count,
                         const io::ArithmeticOptions& task, SamplingOptions sampling) {
  TRIDENT_USER_CHECK(count >= 1, "evaluation needs at least one prompt (got ", count, ")");
  sampling.temperature = 0.0;
  std::vector<GenerationRequest> requests;
  std::vector<io::ArithmeticProblem> problems;
  for (int64_t i = 0; i < count; ++i) {
    problems.push_back(io::make_problem(seed, io::Split::Eval, static_cast<uint64_t>(i), task));
    requests.push_back(GenerationRequest{static_cast<uint64_t>(i),
                                         io::ByteTokenizer::encode(problems.back().prompt), 1});
  }
  const std::vector<Completion> completions = generate_completions(requests, sampling);
  EvalResult r;
  r.prompts = count;
  for (size_t i = 0; i < completions.size(); ++i) {
    r.accuracy += io::is_correct(completions[i].text, problems[i].answer) ? 1.0 : 0.0;
    r.format_rate += io::format_ok(completions[i].text) ? 1.0 : 0.0;
    r.completion_length += static_cast<double>(completions[i].tokens.size());
  }
  const double n = static_cast<double>(count);
  r.accuracy /= n, r.format_rate /= n, r.completion_length /= n;
  return r;
}

}  // namespace

EvalResult evaluate_arithmetic(models::DeepSeekV3Model& model, uint64_t seed, int64_t count,
                               const io::ArithmeticOptions& task, SamplingOptions sampling,
                               ForwardLockstep* lockstep) {
  return evaluate_with(
      [&](const std::vector<GenerationRequest>& requests, const SamplingOptions& options) {
        return generate(model, requests, options, lockstep);
      },
      seed, count, task, std::move(sampling));
}

EvalResult evaluate_arithmetic(StagedPolicy& policy, uint64_t seed, int64_t count,
                               const io::ArithmeticOptions& task, SamplingOptions sampling,
                               ForwardLockstep* lockstep) {
  return evaluate_with(
      [&](const std::vector<GenerationRequest>& requests, const SamplingOptions& options) {
        return generate_staged(policy, requests, options, lockstep);
      },
      seed, count, task, std::move(sampling));
}

}  // namespace trident::train::grpo
