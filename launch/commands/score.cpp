// trident score: log-probability of every given token under HF weights, the way users check a
// converted or exported checkpoint against another implementation.
//   FILE: one sequence per line, space-separated token ids.
//   out:  {"logprobs": [[...], ...]} — for each line, log p(t_i | t_<i) for i = 1 … n−1.
#include <cstdio>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "launch/cli.h"
#include "models/deepseek_v3/model.h"
#include "ops/ops.h"
#include "runtime/config/config.h"
#include "runtime/io/hf_weights.h"

namespace {

std::vector<std::vector<int32_t>> read_sequences(const std::string& path, int64_t vocab) {
  std::ifstream in(path);
  TRIDENT_USER_CHECK(in.good(), "--tokens: cannot open '", path, "'");
  std::vector<std::vector<int32_t>> sequences;
  std::string line;
  int64_t line_number = 0;
  while (std::getline(in, line)) {
    ++line_number;
    std::istringstream words(line);
    std::vector<int32_t> ids;
    std::string word;
    while (words >> word) {
      char* end = nullptr;
      const long long id = std::strtoll(word.c_str(), &end, 10);
      TRIDENT_USER_CHECK(end && *end == '\0', path, ":", line_number, ": '", word,
                         "' is not a token id (space-separated integers expected)");
      TRIDENT_USER_CHECK(id >= 0 && id < vocab, path, ":", line_number, ": token id ", id,
                         " is outside the vocabulary [0, ", vocab, ")");
      ids.push_back(static_cast<int32_t>(id));
    }
    if (!ids.empty()) sequences.push_back(std::move(ids));
  }
  TRIDENT_USER_CHECK(!sequences.empty(), "--tokens: '", path, "' holds no sequences");
  return sequences;
}

}  // namespace

TRIDENT_COMMAND(score_command, "score", "log-probabilities of token sequences under HF weights") {
  trident::launch::ArgParser parser("score");
  std::string hf_dir, tokens_path, output;
  parser.add_string("--hf-dir", &hf_dir, "directory with config.json and *.safetensors");
  parser.add_string("--tokens", &tokens_path, "file with one space-separated token sequence per line");
  parser.add_string("--output", &output, "write the JSON here instead of stdout");
  if (!parser.parse(args)) return 0;
  TRIDENT_USER_CHECK(!hf_dir.empty() && !tokens_path.empty(), "trident score needs --hf-dir DIR and --tokens FILE");

  const trident::config::ModelConfig model_config =
      trident::config::import_hf_config(hf_dir + "/config.json");
  trident::models::DeepSeekV3Model model(model_config, /*seed=*/0);
  trident::io::load_hf_weights(model.params(), hf_dir);
  const auto sequences = read_sequences(tokens_path, model_config.vocab_size());

  nlohmann::json logprobs = nlohmann::json::array();
  for (const auto& ids : sequences) {
    nlohmann::json row = nlohmann::json::array();
    if (ids.size() >= 2) {
      trident::models::TokenBatch batch;
      batch.batch = 1;
      batch.seq_len = static_cast<int64_t>(ids.size()) - 1;
      batch.tokens = ids;
      batch.loss_mask.assign(ids.size(), 1);
      batch.loss_mask[0] = 0;
      const auto forward = model.forward(batch);
      trident::Tensor targets = trident::models::shifted_targets(batch, 1);
      trident::Tensor out = trident::Tensor::empty({batch.seq_len});
      trident::ops::token_logprobs(forward.logits, targets, out);
      for (int64_t i = 0; i < batch.seq_len; ++i) row.push_back(out.item(i));
    }
    logprobs.push_back(std::move(row));
  }
  const std::string text = nlohmann::json{{"logprobs", logprobs}}.dump() + "\n";
  if (output.empty()) {
    std::fputs(text.c_str(), stdout);
  } else {
    std::ofstream(output) << text;
  }
  return 0;
}
