#include "runtime/train/grpo/generate.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <numeric>

#include "runtime/core/rng.h"
#include "runtime/io/tokenizer.h"

namespace trident::train::grpo {

const char* finish_reason_name(FinishReason reason) {
  switch (reason) {
    case FinishReason::Stop:
      return "stop";
    case FinishReason::Eos:
      return "eos";
    case FinishReason::Length:
      return "length";
  }
  return "?";
}

uint64_t sample_stream(uint64_t prompt_id, int64_t sample) {
  // splitmix64 finaliser over the pair, offset from the parameter-init streams by a name hash.
  uint64_t z = stream_id("grpo.rollout") ^ (prompt_id * 0x9E3779B97F4A7C15ULL) ^
               (static_cast<uint64_t>(sample) * 0xD1B54A32D192ED03ULL);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

int32_t sample_token(const float* logits, int64_t vocab, const SamplingOptions& options,
                     float uniform) {
  if (options.temperature <= 0.0) {
    return static_cast<int32_t>(std::max_element(logits, logits + vocab) - logits);
  }
  std::vector<int32_t> order(static_cast<size_t>(vocab));
  std::iota(order.begin(), order.end(), 0);
  // Descending logit, ties by id, so the candidate set is a pure function of the logits.
  std::stable_sort(order.begin(), order.end(),
                   [&](int32_t a, int32_t b) { return logits[a] > logits[b]; });
  size_t keep = order.size();
  if (options.top_k > 0) keep = std::min(keep, static_cast<size_t>(options.top_k));
  const double max_logit = logits[order[0]];
  std::vector<double> probs(keep);
  double total = 0.0;
  for (size_t i = 0; i < keep; ++i) {
    probs[i] = std::exp((logits[order[i]] - max_logit) / options.temperature);
    total += probs[i];
  }
  if (options.top_p < 1.0) {
    double cumulative = 0.0;
    size_t nucleus = keep;
    for (size_t i = 0; i < keep; ++i) {
      cumulative += probs[i] / total;
      if (cumulative >= options.top_p) {
        nucleus = i + 1;
        break;
      }
    }
    keep = nucleus;
    total = std::accumulate(probs.begin(), probs.begin() + static_cast<long>(keep), 0.0);
  }
  const double target = static_cast<double>(uniform) * total;
  double cumulative = 0.0;
  for (size_t i = 0; i < keep; ++i) {
    cumulative += probs[i];
    if (target < cumulative) return order[i];
  }
  return order[keep - 1];
}

int32_t pick_token(const Completion& completion, const float* logits, int64_t vocab,
                   int64_t position, const SamplingOptions& options) {
  const CounterRng rng(options.seed, sample_stream(completion.prompt_id, completion.sample));
  return sample_token(logits, vocab, options, rng.uniform(static_cast<uint64_t>(position)));
}

namespace {
bool ends_with(const std::string& text, const std::string& suffix) {
  return text.size() >= suffix.size() &&
         text.compare(text.size() - suffix.size(), suffix.size(), suffix) == 0;
}
}  // namespace

bool append_token(Completion& completion, int32_t token, const SamplingOptions& options) {
  completion.tokens.push_back(token);
  if (options.stop_at_eos && token == io::ByteTokenizer::kEos) {
    completion.finish = FinishReason::Eos;
    return true;
  }
  if (token >= 0 && token < io::ByteTokenizer::kVocabSize) {
    completion.text.push_back(static_cast<char>(token));
  }
  bool done = false;
  for (const std::string& stop : options.stop) {
    if (ends_with(completion.text, stop)) {
      completion.finish = FinishReason::Stop;
      done = true;
    }
  }
  return done;
}

namespace {

struct Row {
  size_t completion = 0;  // index into the result
  bool done = false;
};

Tensor decode_step(StagedDecoder& decoder, const std::vector<int32_t>& ids, int64_t rows, int64_t n,
                   const ops::RopeTable& rope, std::vector<models::MlaCache>& caches,
                   ForwardLockstep* lockstep) {
  if (lockstep != nullptr) lockstep->before_forward();
  return decoder.step(ids, rows, n, rope, caches);
}

// Decodes every request of one prompt length together.
void generate_bucket(StagedDecoder& decoder, const GenerationBucket& bucket,
                     const SamplingOptions& options, ForwardLockstep* lockstep,
                     std::vector<Completion>& out) {
  const int64_t prompt_len = bucket.prompt_len;
  std::vector<Row> rows;
  for (const size_t completion : bucket.rows) rows.push_back(Row{completion, false});
  const int64_t batch = static_cast<int64_t>(rows.size());
  const int64_t capacity = prompt_len + options.max_new_tokens;
  const ops::RopeTable& rope = *decoder.model().sequence_layout(1, capacity).rope;
  std::vector<models::MlaCache> caches = decoder.make_caches(batch, capacity);

  Tensor logits = decode_step(decoder, bucket.ids, batch, prompt_len, rope, caches, lockstep);
  for (int64_t step = 0; step < options.max_new_tokens; ++step) {
    // The last stage samples; every stage then applies the same tokens.
    std::vector<int32_t> picked(static_cast<size_t>(batch), io::ByteTokenizer::kEos);
    if (decoder.last_stage()) {
      // Sampling runs on the host, which needs the chosen tokens anyway (stop strings, the
      // completions' text): logits on a GPU come over with one copy per decode step.
      const Tensor host_logits = logits.on(Device::CPU);
      const int64_t vocab = host_logits.size(1);
      for (int64_t b = 0; b < batch; ++b) {
        const Row& row = rows[static_cast<size_t>(b)];
        if (row.done) continue;
        Completion& c = out[row.completion];
        const float* row_logits = host_logits.data<float>() + b * vocab;
        if (options.record_logits) c.step_logits.emplace_back(row_logits, row_logits + vocab);
        picked[static_cast<size_t>(b)] =
            pick_token(c, row_logits, vocab, prompt_len + step, options);
      }
    }
    picked = decoder.from_last_stage(std::move(picked));
    std::vector<int32_t> next(static_cast<size_t>(batch), io::ByteTokenizer::kEos);
    bool any_active = false;
    for (int64_t b = 0; b < batch; ++b) {
      Row& row = rows[static_cast<size_t>(b)];
      if (row.done) continue;
      next[static_cast<size_t>(b)] = picked[static_cast<size_t>(b)];
      row.done = append_token(out[row.completion], picked[static_cast<size_t>(b)], options);
      if (!row.done) any_active = true;
    }
    if (!any_active || step + 1 == options.max_new_tokens) break;
    logits = decode_step(decoder, next, batch, 1, rope, caches, lockstep);
  }
}

}  // namespace

GenerationPlan plan_generation(const std::vector<GenerationRequest>& requests,
                               const SamplingOptions& options) {
  TRIDENT_USER_CHECK(options.max_new_tokens >= 1, "max_new_tokens = ", options.max_new_tokens,
                     " must be ≥ 1");
  TRIDENT_USER_CHECK(options.top_p > 0.0 && options.top_p <= 1.0, "top_p = ", options.top_p,
                     " must be in (0, 1]");
  GenerationPlan plan;
  std::map<size_t, GenerationBucket> by_length;
  for (size_t r = 0; r < requests.size(); ++r) {
    const std::vector<int32_t>& prompt = requests[r].prompt;
    TRIDENT_USER_CHECK(!prompt.empty(), "generation request ", r, " has an empty prompt");
    GenerationBucket& bucket = by_length[prompt.size()];
    bucket.prompt_len = static_cast<int64_t>(prompt.size());
    for (int64_t s = 0; s < requests[r].samples; ++s) {
      Completion c;
      c.prompt_id = requests[r].prompt_id;
      c.sample = s;
      bucket.rows.push_back(plan.completions.size());
      bucket.ids.insert(bucket.ids.end(), prompt.begin(), prompt.end());
      plan.completions.push_back(std::move(c));
    }
  }
  for (auto& entry : by_length) plan.buckets.push_back(std::move(entry.second));
  return plan;
}

std::vector<Completion> generate(StagedDecoder& decoder,
                                 const std::vector<GenerationRequest>& requests,
                                 const SamplingOptions& options, ForwardLockstep* lockstep) {
  GenerationPlan plan = plan_generation(requests, options);
  // RoPE and the latent cache are sized for max_position_embeddings positions: a longer
  // sequence would run the model where it was never defined (and grow the table without bound).
  const int64_t positions = decoder.model().config().max_position_embeddings();
  for (const GenerationBucket& bucket : plan.buckets) {
    TRIDENT_USER_CHECK(
        bucket.prompt_len + options.max_new_tokens <= positions,
        "max_new_tokens = ", options.max_new_tokens, " after a prompt of ", bucket.prompt_len,
        " tokens needs ", bucket.prompt_len + options.max_new_tokens,
        " positions, more than model.max_position_embeddings = ", positions, " (at most ",
        std::max<int64_t>(0, positions - bucket.prompt_len), " new tokens for this prompt)");
  }
  for (const GenerationBucket& bucket : plan.buckets)
    generate_bucket(decoder, bucket, options, lockstep, plan.completions);
  if (lockstep != nullptr) lockstep->finish([&decoder] { decoder.filler_step(); });
  return std::move(plan.completions);
}

std::vector<Completion> generate(models::DeepSeekV3Model& model,
                                 const std::vector<GenerationRequest>& requests,
                                 const SamplingOptions& options, ForwardLockstep* lockstep) {
  StagedDecoder decoder(model);
  return generate(decoder, requests, options, lockstep);
}

}  // namespace trident::train::grpo
