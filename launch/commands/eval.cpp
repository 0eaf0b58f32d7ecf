// trident eval: held-out greedy accuracy and format rate on the arithmetic eval split.
#include <cstdio>

#include "launch/cli.h"
#include "models/deepseek_v3/model.h"
#include "runtime/config/config.h"
#include "runtime/io/hf_weights.h"
#include "runtime/train/grpo/evaluate.h"

TRIDENT_COMMAND(eval_command, "eval", "held-out greedy accuracy on the arithmetic eval split") {
  trident::launch::ArgParser parser("eval");
  std::string hf_dir, ops = "add";
  long long count = 64, digits = 2, seed = 0, max_new_tokens = 64;
  parser.add_string("--hf-dir", &hf_dir, "directory with config.json and *.safetensors");
  parser.add_int("--count", &count, "eval problems (default 64)");
  parser.add_int("--digits", &digits, "operand digits, as data.task_digits (default 2)");
  parser.add_string("--ops", &ops, "operations: any of add,sub,mul (default add)");
  parser.add_int("--seed", &seed, "task seed, as train.seed (default 0)");
  parser.add_int("--max-new-tokens", &max_new_tokens, "tokens to generate at most (default 64)");
  if (!parser.parse(args)) return 0;
  TRIDENT_USER_CHECK(!hf_dir.empty(), "trident eval needs --hf-dir DIR");

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
  return 0;
}
