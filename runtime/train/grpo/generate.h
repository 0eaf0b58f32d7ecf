#pragma once
// Batched autoregressive sampling with the MLA latent cache: the prompt is prefilled through
// DecoderLayer::forward_decode (absorbed attention), then one token per step. Prompts of equal
// length decode together (the cache keeps one length for all its rows); each prompt's samples
// are rows of the same batch.
//
// Randomness: the uniform number that picks token `position` of sample `sample` of prompt
// `prompt_id` is CounterRng(seed, stream(prompt_id, sample)).uniform(position), so a rollout
// does not depend on which prompts share a batch or on how rows are split over ranks.
#include <cstdint>
#include <string>
#include <vector>

#include "models/deepseek_v3/model.h"
#include "runtime/train/grpo/lockstep.h"
#include "runtime/train/grpo/staged_decoder.h"

namespace trident::train::grpo {

struct SamplingOptions {
  double temperature = 1.0;  // 0: greedy (argmax, lowest id on ties)
  double top_p = 1.0;        // nucleus: smallest set of tokens with probability ≥ top_p
  int64_t top_k = 0;         // 0: off
  int64_t max_new_tokens = 64;
  std::vector<std::string> stop;  // generation ends once the text ends with one of these
  bool stop_at_eos = true;        // ByteTokenizer::kEos ends generation
  uint64_t seed = 0;
  bool record_logits = false;  // keep every step's logits (tests, debugging)
};

struct GenerationRequest {
  uint64_t prompt_id = 0;  // keys the sampling randomness
  std::vector<int32_t> prompt;
  int64_t samples = 1;
};

enum class FinishReason : uint8_t { Stop, Eos, Length };
const char* finish_reason_name(FinishReason reason);

struct Completion {
  uint64_t prompt_id = 0;
  int64_t sample = 0;
  std::vector<int32_t> tokens;  // generated tokens (a final EOS included)
  std::string text;             // decoded tokens, EOS excluded (stop strings included)
  FinishReason finish = FinishReason::Length;
  bool truncated() const { return finish == FinishReason::Length; }
  std::vector<std::vector<float>> step_logits;  // [tokens][V] with record_logits
};

// One completion per (request, sample), ordered by request then sample, decoded through the
// decoder's stages; every rank of the pipeline returns the same completions (step_logits with
// options.record_logits on the last stage's rank only). Under expert parallelism pass the EP
// group's lockstep: every prefill and decode step is announced, and a rank that finished (or has
// no requests) runs filler steps until every rank has.
std::vector<Completion> generate(StagedDecoder& decoder,
                                 const std::vector<GenerationRequest>& requests,
                                 const SamplingOptions& options,
                                 ForwardLockstep* lockstep = nullptr);
// The same for a model that holds every layer (one stage; TP and EP come with the model).
std::vector<Completion> generate(models::DeepSeekV3Model& model,
                                 const std::vector<GenerationRequest>& requests,
                                 const SamplingOptions& options,
                                 ForwardLockstep* lockstep = nullptr);

// The prompts of one length, decoded together (the cache keeps one length for all its rows).
struct GenerationBucket {
  int64_t prompt_len = 0;
  std::vector<size_t> rows;  // per batch row: its completion's index in the plan
  std::vector<int32_t> ids;  // [rows · prompt_len] the rows' prompts
};
// One empty completion per (request, sample), ordered by request then sample, and the batch
// rows of each prompt length, shortest first. Checks the options and the requests (UserError
// naming what is wrong).
struct GenerationPlan {
  std::vector<Completion> completions;
  std::vector<GenerationBucket> buckets;
};
GenerationPlan plan_generation(const std::vector<GenerationRequest>& requests,
                               const SamplingOptions& options);

// Picks a token from one row of logits [V] (exposed for tests). `uniform` in (0, 1).
int32_t sample_token(const float* logits, int64_t vocab, const SamplingOptions& options,
                     float uniform);
// The stream key of (prompt, sample).
uint64_t sample_stream(uint64_t prompt_id, int64_t sample);
// The token sampled for `completion` at absolute position `position` (prompt included) from
// that row's logits [V]: sample_token with the completion's CounterRng stream.
int32_t pick_token(const Completion& completion, const float* logits, int64_t vocab,
                   int64_t position, const SamplingOptions& options);
// Appends a generated token (text, EOS and stop strings); true once the completion is finished.
bool append_token(Completion& completion, int32_t token, const SamplingOptions& options);

}  // namespace trident::train::grpo
