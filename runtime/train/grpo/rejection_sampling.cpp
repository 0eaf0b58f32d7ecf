#include "runtime/train/grpo/rejection_sampling.h"

#include <algorithm>
#include <cmath>
#include <unordered_set>

#include "runtime/core/error.h"
#include "runtime/io/tokenizer.h"

namespace trident::train::grpo {

std::vector<size_t> select_kept(const std::vector<Candidate>& candidates, const KeepRule& rule) {
  std::vector<size_t> order;
  for (size_t i = 0; i < candidates.size(); ++i) {
    if (candidates[i].accepted) order.push_back(i);
  }
  std::sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    const Candidate& x = candidates[a];
    const Candidate& y = candidates[b];
    if (x.reward != y.reward) return x.reward > y.reward;
    if (x.length != y.length) return x.length < y.length;
    return x.sample < y.sample;
  });
  std::vector<size_t> kept;
  std::unordered_set<std::string> seen;
  for (const size_t i : order) {
    if (rule.keep > 0 && static_cast<int64_t>(kept.size()) >= rule.keep) break;
    if (rule.distinct && !seen.insert(candidates[i].text).second) continue;
    kept.push_back(i);
  }
  return kept;
}

Candidate make_candidate(const Completion& completion, const RuleReward& rule,
                         const double* external, const AcceptanceOptions& acceptance) {
  Candidate c;
  c.sample = completion.sample;
  c.length = static_cast<int64_t>(completion.tokens.size());
  c.reward = external != nullptr ? *external : rule.reward;
  c.accepted =
      external != nullptr ? *external >= acceptance.min_reward : rule.correct && rule.format;
  c.text = completion.text;
  return c;
}

RejectionCounts& RejectionCounts::operator+=(const RejectionCounts& o) {
  prompts += o.prompts;
  samples += o.samples;
  accepted += o.accepted;
  kept += o.kept;
  prompts_with_accepted += o.prompts_with_accepted;
  correct += o.correct;
  formatted += o.formatted;
  truncated += o.truncated;
  sampled_tokens += o.sampled_tokens;
  return *this;
}

void check_rejection_options(const RejectionOptions& o) {
  TRIDENT_USER_CHECK(o.samples >= 1, "--samples = ", o.samples,
                     ": valid values are ≥ 1 (completions sampled per prompt)");
  TRIDENT_USER_CHECK(o.keep.keep >= 0, "--keep = ", o.keep.keep,
                     ": valid values are 0 (every accepted completion) or ≥ 1 (the best N)");
  const SamplingOptions& s = o.sampling;
  TRIDENT_USER_CHECK(std::isfinite(s.temperature) && s.temperature >= 0.0,
                     "--temperature = ", s.temperature,
                     ": valid values are 0 (greedy) or a finite number > 0");
  TRIDENT_USER_CHECK(s.top_p > 0.0 && s.top_p <= 1.0, "--top-p = ", s.top_p,
                     ": valid values are in (0, 1]");
  TRIDENT_USER_CHECK(s.top_k >= 0, "--top-k = ", s.top_k, ": valid values are 0 (off) or ≥ 1");
  TRIDENT_USER_CHECK(s.max_new_tokens >= 1, "--max-new-tokens = ", s.max_new_tokens,
                     ": valid values are ≥ 1");
  TRIDENT_USER_CHECK(std::isfinite(o.acceptance.min_reward),
                     "--min-reward = ", o.acceptance.min_reward,
                     ": valid values are finite numbers");
  TRIDENT_USER_CHECK(o.acceptance.reward_timeout_s > 0.0,
                     "--reward-timeout = ", o.acceptance.reward_timeout_s,
                     ": valid values are > 0 seconds");
}

RejectionResult rejection_sample(models::DeepSeekV3Model& model,
                                 const std::vector<GrpoPrompt>& prompts,
                                 const RejectionOptions& options) {
  check_rejection_options(options);
  RejectionResult result;
  if (prompts.empty()) return result;
  std::vector<GenerationRequest> requests;
  requests.reserve(prompts.size());
  for (const GrpoPrompt& p : prompts) {
    requests.push_back(GenerationRequest{p.id, io::ByteTokenizer::encode(p.text), options.samples});
  }
  // Ordered by request, then sample: completion j·k + s is sample s of prompt j.
  const std::vector<Completion> completions = generate(model, requests, options.sampling);
  const auto k = static_cast<size_t>(options.samples);

  std::vector<RewardInput> inputs;
  inputs.reserve(completions.size());
  for (size_t i = 0; i < completions.size(); ++i) {
    const GrpoPrompt& p = prompts[i / k];
    inputs.push_back(RewardInput{p.text, completions[i].text, p.reference});
  }
  const AcceptanceOptions& a = options.acceptance;
  std::vector<double> external;
  if (!a.reward_command.empty()) {
    external = external_rewards(a.reward_command, inputs, a.reward_timeout_s);
  }

  RejectionCounts& counts = result.counts;
  counts.prompts = static_cast<int64_t>(prompts.size());
  for (size_t j = 0; j < prompts.size(); ++j) {
    std::vector<Candidate> candidates;
    candidates.reserve(k);
    for (size_t s = 0; s < k; ++s) {
      const size_t i = j * k + s;
      const Completion& c = completions[i];
      const RuleReward rule = rule_reward(inputs[i], a.weights);
      candidates.push_back(make_candidate(c, rule, external.empty() ? nullptr : &external[i], a));
      counts.samples += 1;
      counts.correct += rule.correct ? 1 : 0;
      counts.formatted += rule.format ? 1 : 0;
      counts.truncated += c.truncated() ? 1 : 0;
      counts.sampled_tokens += static_cast<int64_t>(c.tokens.size());
    }
    const auto accepted = std::count_if(candidates.begin(), candidates.end(),
                                        [](const Candidate& c) { return c.accepted; });
    counts.accepted += accepted;
    counts.prompts_with_accepted += accepted > 0 ? 1 : 0;
    for (const size_t s : select_kept(candidates, options.keep)) {
      const Candidate& c = candidates[s];
      result.kept.push_back(KeptCompletion{prompts[j].id, c.sample, prompts[j].text,
                                           prompts[j].reference, c.text, c.reward, c.length});
    }
  }
  counts.kept = static_cast<int64_t>(result.kept.size());
  return result;
}

}  // namespace trident::train::grpo
