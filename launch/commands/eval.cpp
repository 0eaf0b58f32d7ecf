// trident eval: held-out greedy accuracy and format rate on the arithmetic eval split.
// --output OUT.json also gets each problem: {"problems": [{"prompt", "answer", "completion"
// (token ids), "correct", "format_ok"}, ...]} beside the summary (what `trident bench eval`
// hands to the PyTorch reference).
#include <cstdio>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>

#include "launch/cli.h"
#include "models/deepseek_v3/model.h"
#include "runtime/config/config.h"
#include "runtime/io/hf_weights.h"
#include "runtime/io/mapped_file.h"
#include "runtime/train/grpo/evaluate.h"

namespace {

nlohmann::json summary_json(const trident::train::grpo::EvalResult& r) {
  return nlohmann::json{{"prompts", r.prompts},
                        {"accuracy", r.accuracy},
                        {"format_rate", r.format_rate},
                        {"completion_length", r.completion_length}};
}

void write_problems(const trident::train::grpo::EvalResult& r,
                    trident::io::AtomicFileWriter& writer) {
  nlohmann::json out = summary_json(r);
  nlohmann::json problems = nlohmann::json::array();
  for (const trident::train::grpo::EvalSample& sample : r.samples) {
    problems.push_back({{"prompt", sample.prompt},
                        {"answer", sample.answer},
                        {"completion", sample.completion},
                        {"correct", sample.correct},
                        {"format_ok", sample.format_ok}});
  }
  out["problems"] = std::move(problems);
  const std::string text = out.dump() + "\n";
  writer.write(text.data(), text.size());
  writer.commit();
}

}  // namespace

TRIDENT_COMMAND(eval_command, "eval", "held-out greedy accuracy on the arithmetic eval split") {
  trident::launch::ArgParser parser("eval");
  std::string hf_dir, ops = "add", output;
  long long count = 64, digits = 2, seed = 0, max_new_tokens = 64;
  parser.add_string("--hf-dir", &hf_dir, "directory with config.json and *.safetensors");
  parser.add_int("--count", &count, "eval problems (default 64)");
  parser.add_int("--digits", &digits, "operand digits, as data.task_digits (default 2)");
  parser.add_string("--ops", &ops, "operations: any of add,sub,mul (default add)");
  parser.add_int("--seed", &seed, "task seed, as train.seed (default 0)");
  parser.add_int("--max-new-tokens", &max_new_tokens, "tokens to generate at most (default 64)");
  parser.add_string("--output", &output,
                    "also write every problem, its completion and its scores to this JSON file");
  if (!parser.parse(args)) return 0;
  TRIDENT_USER_CHECK(!hf_dir.empty(), "trident eval needs --hf-dir DIR");

  // Opened before the model is built: a path that cannot be written fails now; renamed into
  // place at the end, so a failed run leaves no half-written file.
  std::unique_ptr<trident::io::AtomicFileWriter> writer;
  if (!output.empty()) writer = std::make_unique<trident::io::AtomicFileWriter>(output);
  trident::models::DeepSeekV3Model model(trident::config::import_hf_config(hf_dir + "/config.json"),
                                         trident::models::ForInference{});
  trident::io::load_hf_weights(model.params(), hf_dir);
  trident::train::grpo::SamplingOptions sampling;
  sampling.max_new_tokens = max_new_tokens;
  sampling.stop = {"</answer>"};
  const trident::io::ArithmeticOptions task{static_cast<int>(digits), trident::io::parse_ops(ops)};
  const auto r = trident::train::grpo::evaluate_arithmetic(model, static_cast<uint64_t>(seed),
                                                           count, task, sampling);
  std::printf(
      "{\"prompts\": %lld, \"accuracy\": %.6f, \"format_rate\": %.6f, \"completion_length\": "
      "%.2f}\n",
      static_cast<long long>(r.prompts), r.accuracy, r.format_rate, r.completion_length);
  if (writer) write_problems(r, *writer);
  return 0;
}
