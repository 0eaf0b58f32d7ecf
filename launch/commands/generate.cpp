// trident generate: sample completions from HF weights with the MLA latent cache.
//   --prompt TEXT: completions of one prompt (byte tokens), printed as text or JSON lines;
//   --tokens FILE: one prompt of token ids per line (as `trident score` reads them), all
//                  decoded in one run; --output OUT.json gets {"tokens": [[...], ...]}, the
//                  generated ids of each line (what `trident bench generate` compares).
#include "runtime/train/grpo/generate.h"

#include <cstdio>
#include <filesystem>
#include <memory>
#include <nlohmann/json.hpp>

#include "launch/cli.h"
#include "models/deepseek_v3/model.h"
#include "runtime/config/config.h"
#include "runtime/io/hf_weights.h"
#include "runtime/io/mapped_file.h"
#include "runtime/io/token_lines.h"
#include "runtime/io/tokenizer.h"

namespace {

using trident::train::grpo::Completion;

void print_completions(const std::vector<Completion>& completions, const std::string& prompt,
                       bool json) {
  for (const Completion& c : completions) {
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
}

// {"tokens": [[...], ...]}: the generated ids of each completion, in request order; to
// `writer` when there is one, else to standard output.
void write_tokens(const std::vector<Completion>& completions,
                  trident::io::AtomicFileWriter* writer) {
  nlohmann::json tokens = nlohmann::json::array();
  for (const Completion& c : completions) tokens.push_back(c.tokens);
  const std::string text = nlohmann::json{{"tokens", tokens}}.dump() + "\n";
  if (writer == nullptr) {
    std::fputs(text.c_str(), stdout);
    return;
  }
  writer->write(text.data(), text.size());
  writer->commit();
}

}  // namespace

TRIDENT_COMMAND(generate_command, "generate", "sample completions of prompts from HF weights") {
  trident::launch::ArgParser parser("generate");
  std::string hf_dir, prompt, tokens_path, output;
  std::vector<std::string> stop;
  long long samples = 1, max_new_tokens = 64, top_k = 0, seed = 0;
  double temperature = 0.0, top_p = 1.0;
  bool json = false, no_stop = false;
  parser.add_string("--hf-dir", &hf_dir, "directory with config.json and *.safetensors");
  parser.add_string("--prompt", &prompt, "prompt text, e.g. \"12+34=\"");
  parser.add_string("--tokens", &tokens_path,
                    "instead of --prompt: a file with one prompt of space-separated token ids "
                    "per line (the stops are --prompt's: the byte tokenizer's end-of-sequence "
                    "id and --stop strings over byte ids; --no-stop for none)");
  parser.add_string("--output", &output,
                    "with --tokens: write {\"tokens\": [[...], ...]} here instead of stdout");
  parser.add_int("--samples", &samples, "completions to sample per prompt (default 1)");
  parser.add_double("--temperature", &temperature, "0 = greedy (default 0)");
  parser.add_double("--top-p", &top_p, "nucleus sampling threshold in (0, 1] (default 1)");
  parser.add_int("--top-k", &top_k, "keep the k most likely tokens (0 = off)");
  parser.add_int("--max-new-tokens", &max_new_tokens, "tokens to generate at most (default 64)");
  parser.add_repeated("--stop", &stop,
                      "stop once the text ends with this string (repeatable; default </answer>)");
  parser.add_bool("--no-stop", &no_stop,
                  "generate exactly --max-new-tokens tokens: no stop strings, and the "
                  "end-of-sequence token does not end a completion (benchmarks)");
  parser.add_int("--seed", &seed, "sampling seed (default 0)");
  parser.add_bool("--json", &json, "with --prompt: print one JSON object per completion");
  if (!parser.parse(args)) return 0;
  TRIDENT_USER_CHECK(!hf_dir.empty() && (prompt.empty() != tokens_path.empty()),
                     "trident generate needs --hf-dir DIR and one of --prompt TEXT or "
                     "--tokens FILE");
  TRIDENT_USER_CHECK(output.empty() || !tokens_path.empty(),
                     "--output goes with --tokens (with --prompt the completions are printed)");
  TRIDENT_USER_CHECK(!json || tokens_path.empty(),
                     "--json goes with --prompt (with --tokens the output is JSON already)");
  TRIDENT_USER_CHECK(
      output.empty() || std::filesystem::absolute(output).lexically_normal() !=
                            std::filesystem::absolute(tokens_path).lexically_normal(),
      "--output '", output, "' is the --tokens file: it would be overwritten");
  TRIDENT_USER_CHECK(!no_stop || stop.empty(), "--no-stop and --stop contradict each other");
  TRIDENT_USER_CHECK(samples >= 1, "--samples = ", samples, " must be ≥ 1");
  TRIDENT_USER_CHECK(temperature >= 0, "--temperature = ", temperature, " must be ≥ 0");

  // Generation reads the main head only: the multi-token-prediction modules are neither built
  // nor loaded (their weights in the directory are left alone).
  trident::config::ModelConfig model_config =
      trident::config::import_hf_config(hf_dir + "/config.json");
  model_config.set_num_nextn_predict_layers(0);
  std::vector<trident::train::grpo::GenerationRequest> requests;
  if (tokens_path.empty()) {
    requests.push_back({0, trident::io::ByteTokenizer::encode(prompt), samples});
  } else {
    const auto prompts =
        trident::io::read_token_lines(tokens_path, model_config.vocab_size(), "--tokens");
    for (size_t i = 0; i < prompts.size(); ++i) requests.push_back({i, prompts[i], samples});
  }
  // Opened before the model is built: a path that cannot be written fails now, not after the
  // decode; renamed into place at the end, so a failed run leaves no half-written file.
  std::unique_ptr<trident::io::AtomicFileWriter> writer;
  if (!output.empty()) writer = std::make_unique<trident::io::AtomicFileWriter>(output);
  trident::models::DeepSeekV3Model model(model_config, trident::models::ForInference{});
  trident::io::load_hf_weights(model.params(), hf_dir);

  trident::train::grpo::SamplingOptions sampling;
  sampling.temperature = temperature;
  sampling.top_p = top_p;
  sampling.top_k = top_k;
  sampling.max_new_tokens = max_new_tokens;
  if (no_stop) {
    sampling.stop_at_eos = false;
  } else {
    sampling.stop = stop.empty() ? std::vector<std::string>{"</answer>"} : stop;
  }
  sampling.seed = static_cast<uint64_t>(seed);
  const std::vector<Completion> completions =
      trident::train::grpo::generate(model, requests, sampling);
  if (tokens_path.empty()) {
    print_completions(completions, prompt, json);
  } else {
    write_tokens(completions, writer.get());
  }
  return 0;
}
