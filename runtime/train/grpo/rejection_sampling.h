#pragma once
// Rejection sampling for SFT data (`trident sample-sft`, docs/grpo.md): k completions per
// prompt, decoded and sampled as GRPO's rollouts (generate.h), scored by GRPO's rewards
// (rewards.h), and the accepted ones kept by one stated rule (select_kept).
#include <cstdint>
#include <string>
#include <vector>

#include "models/deepseek_v3/model.h"
#include "runtime/train/grpo/generate.h"
#include "runtime/train/grpo/grpo_trainer.h"
#include "runtime/train/grpo/rewards.h"

namespace trident::train::grpo {

// One sampled completion of a prompt, as the selection sees it.
struct Candidate {
  int64_t sample = 0;  // index among the prompt's k samples
  int64_t length = 0;  // generated tokens
  double reward = 0.0;
  bool accepted = false;
  std::string text;
};

struct KeepRule {
  int64_t keep = 1;       // at most this many per prompt; 0: every accepted completion
  bool distinct = false;  // at most one completion per distinct text
};

// The kept candidates (indices into `candidates`), best first. Only accepted candidates are
// kept, ranked by highest reward, then fewest generated tokens, then lowest sample index; with
// `distinct` a candidate whose text equals that of one ranked before it is skipped; the first
// `rule.keep` remain (all of them with keep = 0).
std::vector<size_t> select_kept(const std::vector<Candidate>& candidates, const KeepRule& rule);

// What makes a completion acceptable. Without a command: the rule reward, and a completion is
// accepted when it is both correct and well formatted. With `reward_command` (rewards.h's
// external_rewards): accepted when the command's reward is at least `min_reward`.
struct AcceptanceOptions {
  RuleRewardWeights weights;
  std::string reward_command;
  double min_reward = 1.0;
  double reward_timeout_s = 60.0;
};

// The candidate of one completion: its rule reward, or `external` (the command's reward) when
// that is not null, and whether `acceptance` accepts it.
Candidate make_candidate(const Completion& completion, const RuleReward& rule,
                         const double* external, const AcceptanceOptions& acceptance);

struct RejectionOptions {
  int64_t samples = 8;  // k, per prompt
  KeepRule keep;
  SamplingOptions sampling;
  AcceptanceOptions acceptance;
};

struct KeptCompletion {
  uint64_t prompt_id = 0;
  int64_t sample = 0;
  std::string prompt;
  std::string reference;
  std::string completion;  // text, EOS excluded
  double reward = 0.0;
  int64_t tokens = 0;  // generated tokens
};

// Counts over the sampled prompts; sums of these are the counts of the union.
struct RejectionCounts {
  int64_t prompts = 0;
  int64_t samples = 0;
  int64_t accepted = 0;  // completions the reward accepts
  int64_t kept = 0;
  int64_t prompts_with_accepted = 0;
  int64_t correct = 0;
  int64_t formatted = 0;
  int64_t truncated = 0;
  int64_t sampled_tokens = 0;  // generated tokens of every sample
  RejectionCounts& operator+=(const RejectionCounts& other);
};

struct RejectionResult {
  std::vector<KeptCompletion> kept;  // by prompt, then in select_kept's order
  RejectionCounts counts;
};

// Samples options.samples completions of every prompt (prompt ids key the sampling streams, as
// in GRPO), scores them, and keeps those select_kept picks. UserError on bad options.
RejectionResult rejection_sample(models::DeepSeekV3Model& model,
                                 const std::vector<GrpoPrompt>& prompts,
                                 const RejectionOptions& options);

// Checks the options (one UserError naming the command-line flag and its valid values).
void check_rejection_options(const RejectionOptions& options);

}  // namespace trident::train::grpo
