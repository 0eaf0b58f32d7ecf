// trident generate: sample completions of a prompt from HF weights with the MLA latent cache.
#include "runtime/train/grpo/generate.h"

#include <cstdio>
#include <nlohmann/json.hpp>

#include "launch/cli.h"
#include "models/deepseek_v3/model.h"
#include "runtime/config/config.h"
#include "runtime/io/hf_weights.h"
#include "runtime/io/tokenizer.h"

TRIDENT_COMMAND(generate_command, "generate", "sample completions of a prompt from HF weights") {
  trident::launch::ArgParser parser("generate");
  std::string hf_dir, prompt;
  std::vector<std::string> stop;
  long long samples = 1, max_new_tokens = 64, top_k = 0, seed = 0;
  double temperature = 0.0, top_p = 1.0;
  bool json = false;
  parser.add_string("--hf-dir", &hf_dir, "directory with config.json and *.safetensors");
  parser.add_string("--prompt", &prompt, "prompt text, e.g. \"12+34=\"");
  parser.add_int("--samples", &samples, "completions to sample (default 1)");
  parser.add_double("--temperature", &temperature, "0 = greedy (default 0)");
  parser.add_double("--top-p", &top_p, "nucleus sampling threshold in (0, 1] (default 1)");
  parser.add_int("--top-k", &top_k, "keep the k most likely tokens (0 = off)");
  parser.add_int("--max-new-tokens", &max_new_tokens, "tokens to generate at most (default 64)");
  parser.add_repeated("--stop", &stop,
                      "stop once the text ends with this string (repeatable; default </answer>)");
  parser.add_int("--seed", &seed, "sampling seed (default 0)");
  parser.add_bool("--json", &json, "print one JSON object per completion");
  if (!parser.parse(args)) return 0;
  TRIDENT_USER_CHECK(!hf_dir.empty() && !prompt.empty(),
                     "trident generate needs --hf-dir DIR and --prompt TEXT");
  TRIDENT_USER_CHECK(samples >= 1, "--samples = ", samples, " must be ≥ 1");
  TRIDENT_USER_CHECK(temperature >= 0, "--temperature = ", temperature, " must be ≥ 0");

  trident::models::DeepSeekV3Model model(trident::config::import_hf_config(hf_dir + "/config.json"),
                                         trident::models::WeightsLoadedNext{});
  trident::io::load_hf_weights(model.params(), hf_dir);
  trident::train::grpo::SamplingOptions sampling;
  sampling.temperature = temperature;
  sampling.top_p = top_p;
  sampling.top_k = top_k;
  sampling.max_new_tokens = max_new_tokens;
  sampling.stop = stop.empty() ? std::vector<std::string>{"</answer>"} : stop;
  sampling.seed = static_cast<uint64_t>(seed);
  const auto completions = trident::train::grpo::generate(
      model, {{0, trident::io::ByteTokenizer::encode(prompt), samples}}, sampling);
  for (const auto& c : completions) {
    if (json) {
      const nlohmann::json record{{"sample", c.sample},
                                  {"completion", c.text},
                                  {"tokens", c.tokens.size()},
                                  {"finish", trident::train::grpo::finish_reason_name(c.finish)}};
      std::printf("%s\n",
                  record.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace).c_str());
    } else {
      std::printf("%s%s\n", prompt.c_str(), c.text.c_str());
    }
  }
  return 0;
}
