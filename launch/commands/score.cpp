// trident score: log-probability of every given token under HF weights, the way users check a
// converted or exported checkpoint against another implementation.
//   FILE: one sequence per line, space-separated token ids.
//   out:  {"logprobs": [[...], ...]} — for each line, log p(t_i | t_<i) for i = 1 … n−1.
#include <algorithm>
#include <cstdio>
#include <map>
#include <nlohmann/json.hpp>

#include "launch/cli.h"
#include "models/deepseek_v3/model.h"
#include "ops/ops.h"
#include "runtime/config/config.h"
#include "runtime/io/hf_weights.h"
#include "runtime/io/mapped_file.h"
#include "runtime/io/token_lines.h"

namespace {

// Indices of sequences scored in one forward pass: all of one length (a causal model gives
// each row what it would alone), at most kTokensPerForward tokens (the forward keeps every
// activation, and a smaller pass reuses the cached blocks of the one before: 256 to 2048 tokens
// took the same time on a hidden-256 model) and at most kLogitsBudget floats of logits
// [rows · length, V].
using ScoreBatch = std::vector<size_t>;
constexpr int64_t kTokensPerForward = 2048;
constexpr int64_t kLogitsBudget = int64_t{1} << 27;  // 512 MiB of fp32 logits

std::vector<ScoreBatch> batch_by_length(const std::vector<std::vector<int32_t>>& sequences,
                                        int64_t vocab) {
  std::map<size_t, ScoreBatch> by_length;
  for (size_t i = 0; i < sequences.size(); ++i) {
    if (sequences[i].size() >= 2) by_length[sequences[i].size()].push_back(i);
  }
  std::vector<ScoreBatch> batches;
  for (const auto& [length, indices] : by_length) {
    const int64_t per_row = static_cast<int64_t>(length - 1) * vocab;
    const int64_t fit =
        std::min(kLogitsBudget / per_row, kTokensPerForward / static_cast<int64_t>(length - 1));
    const auto rows = static_cast<size_t>(std::max<int64_t>(1, fit));
    for (size_t first = 0; first < indices.size(); first += rows) {
      const size_t last = std::min(indices.size(), first + rows);
      batches.emplace_back(indices.begin() + static_cast<int64_t>(first),
                           indices.begin() + static_cast<int64_t>(last));
    }
  }
  return batches;
}

// log p(t_i | t_<i), i = 1 … n−1, of each row of `rows` (equal lengths n), row after row.
std::vector<float> score_batch(trident::models::DeepSeekV3Model& model,
                               const std::vector<std::vector<int32_t>>& sequences,
                               const ScoreBatch& rows) {
  trident::models::TokenBatch batch;
  batch.batch = static_cast<int64_t>(rows.size());
  batch.seq_len = static_cast<int64_t>(sequences[rows.front()].size()) - 1;
  for (const size_t row : rows) {
    batch.tokens.insert(batch.tokens.end(), sequences[row].begin(), sequences[row].end());
    batch.loss_mask.push_back(0);
    batch.loss_mask.insert(batch.loss_mask.end(), static_cast<size_t>(batch.seq_len), 1);
  }
  const auto forward = model.forward(batch);
  const trident::Tensor targets = trident::models::shifted_targets(batch, 1);
  trident::Tensor out = trident::Tensor::empty({batch.batch * batch.seq_len});
  trident::ops::token_logprobs(forward.logits, targets, out);
  return out.to_vector();
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

  // Scoring reads the main head only: the multi-token-prediction modules are neither built nor
  // loaded (their weights in the directory are left alone).
  trident::config::ModelConfig model_config =
      trident::config::import_hf_config(hf_dir + "/config.json");
  model_config.set_num_nextn_predict_layers(0);
  trident::models::DeepSeekV3Model model(model_config, trident::models::ForInference{});
  trident::io::load_hf_weights(model.params(), hf_dir);
  const auto sequences =
      trident::io::read_token_lines(tokens_path, model_config.vocab_size(), "--tokens");

  std::vector<std::vector<float>> scores(sequences.size());
  for (const ScoreBatch& rows : batch_by_length(sequences, model_config.vocab_size())) {
    const std::vector<float> batch_scores = score_batch(model, sequences, rows);
    const auto targets = static_cast<int64_t>(sequences[rows.front()].size()) - 1;
    for (size_t r = 0; r < rows.size(); ++r) {
      const auto begin = batch_scores.begin() + static_cast<int64_t>(r) * targets;
      scores[rows[r]].assign(begin, begin + targets);
    }
  }
  nlohmann::json logprobs = nlohmann::json::array();
  for (const std::vector<float>& row : scores) logprobs.push_back(row);
  const std::string text = nlohmann::json{{"logprobs", logprobs}}.dump() + "\n";
  if (output.empty()) {
    std::fputs(text.c_str(), stdout);
  } else {
    // Written beside and renamed into place: an unwritable path is an error naming it, and a
    // failed run never leaves a half-written file.
    trident::io::AtomicFileWriter writer(output);
    writer.write(text.data(), text.size());
    writer.commit();
  }
  return 0;
}
