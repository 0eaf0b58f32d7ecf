#include "runtime/train/grpo/evaluate.h"

#include <utility>

#include "runtime/io/tokenizer.h"
#include "runtime/train/grpo/rewards.h"

namespace trident::train::grpo {

EvalResult evaluate_arithmetic(models::DeepSeekV3Model& model, uint64_t seed, int64_t count,
                               const io::ArithmeticOptions& task, SamplingOptions sampling,
                               ForwardLockstep* lockstep) {
  StagedDecoder decoder(model);
  return evaluate_arithmetic(decoder, seed, count, task, std::move(sampling), lockstep);
}

EvalResult evaluate_arithmetic(StagedDecoder& decoder, uint64_t seed, int64_t count,
                               const io::ArithmeticOptions& task, SamplingOptions sampling,
                               ForwardLockstep* lockstep) {
  TRIDENT_USER_CHECK(count >= 1, "evaluation needs at least one prompt (got ", count, ")");
  sampling.temperature = 0.0;
  std::vector<GenerationRequest> requests;
  std::vector<io::ArithmeticProblem> problems;
  for (int64_t i = 0; i < count; ++i) {
    problems.push_back(io::make_problem(seed, io::Split::Eval, static_cast<uint64_t>(i), task));
    requests.push_back(GenerationRequest{static_cast<uint64_t>(i),
                                         io::ByteTokenizer::encode(problems.back().prompt), 1});
  }
  const std::vector<Completion> completions = generate(decoder, requests, sampling, lockstep);
  EvalResult r;
  r.prompts = count;
  for (size_t i = 0; i < completions.size(); ++i) {
    EvalSample sample{problems[i].prompt, problems[i].answer, completions[i].tokens,
                      io::is_correct(completions[i].text, problems[i].answer),
                      io::format_ok(completions[i].text)};
    r.accuracy += sample.correct ? 1.0 : 0.0;
    r.format_rate += sample.format_ok ? 1.0 : 0.0;
    r.completion_length += static_cast<double>(sample.completion.size());
    r.samples.push_back(std::move(sample));
  }
  const double n = static_cast<double>(count);
  r.accuracy /= n, r.format_rate /= n, r.completion_length /= n;
  return r;
}

}  // namespace trident::train::grpo
