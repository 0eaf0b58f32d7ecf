#pragma once
// Rewards for GRPO. Built in: the rule rewards of the arithmetic task, accuracy (the text of
// <answer>…</answer> equals the reference, compared as integers when both are) and format
// (<think>…</think><answer>…</answer>, io::format_ok), combined with weights. Pluggable: an
// external command that reads one JSON object {"prompt", "completion", "reference"} per line
// on stdin and writes one number per line on stdout, in order.
#include <string>
#include <vector>

namespace trident::train::grpo {

struct RewardInput {
  std::string prompt;
  std::string completion;
  std::string reference;  // expected answer
};

struct RuleReward {
  bool correct = false;
  bool format = false;
  double reward = 0.0;  // accuracy_weight · correct + format_weight · format
};

struct RuleRewardWeights {
  double accuracy = 1.0;
  double format = 0.5;
};

RuleReward rule_reward(const RewardInput& input, const RuleRewardWeights& weights);

// Runs `command` with /bin/sh -c, feeding the inputs as JSONL. A non-zero exit, a signal, a
// wrong number of lines, a line that is not a finite number, or a run longer than timeout_s
// (the process is killed) throws a UserError naming the command and the problem. The command
// ignores the stop signals (SIGTERM, SIGUSR1, SIGINT), which mean "save after this step".
std::vector<double> external_rewards(const std::string& command,
                                     const std::vector<RewardInput>& inputs, double timeout_s);

// The reward command's stdout: `expected` lines, each one finite number (surrounding blanks
// allowed). Anything else is a UserError that starts with `where` and names the line.
std::vector<double> parse_reward_output(const std::string& out, size_t expected,
                                        const std::string& where);

}  // namespace trident::train::grpo
