// Rejection sampling for SFT data: which completions are accepted, which are kept and in what
// order (the tie-break rule of docs/grpo.md), and the counts of a sampling run.
#include <gtest/gtest.h>

#include <algorithm>
#include <fstream>
#include <string>

#include "runtime/core/error.h"
#include "runtime/io/synthetic_task.h"
#include "runtime/train/grpo/rejection_sampling.h"
#include "tests/grpo/grpo_test_model.h"

namespace trident::train::grpo {
namespace {

Candidate candidate(int64_t sample, int64_t length, double reward, bool accepted,
                    std::string text = "") {
  if (text.empty()) text = "text of sample " + std::to_string(sample);
  return Candidate{sample, length, reward, accepted, std::move(text)};
}

TEST(RejectionSampling, BestOfKIsTheShortestAcceptedThenTheLowestSample) {
  const std::vector<Candidate> c{candidate(0, 40, 1.5, false), candidate(1, 30, 1.5, true),
                                 candidate(2, 20, 0.5, false), candidate(3, 30, 1.5, true),
                                 candidate(4, 35, 1.5, true)};
  // Sample 2 is the shortest but rejected; 1 and 3 tie on length: the lower sample wins.
  EXPECT_EQ(select_kept(c, KeepRule{1, false}), (std::vector<size_t>{1}));
  EXPECT_EQ(select_kept(c, KeepRule{2, false}), (std::vector<size_t>{1, 3}));
  // keep = 0: every accepted one, best first; keep above the count: the same.
  EXPECT_EQ(select_kept(c, KeepRule{0, false}), (std::vector<size_t>{1, 3, 4}));
  EXPECT_EQ(select_kept(c, KeepRule{9, false}), (std::vector<size_t>{1, 3, 4}));
}

TEST(RejectionSampling, HigherRewardRanksBeforeLength) {
  const std::vector<Candidate> c{candidate(0, 10, 1.0, true), candidate(1, 50, 2.0, true),
                                 candidate(2, 10, 2.0, true)};
  EXPECT_EQ(select_kept(c, KeepRule{0, false}), (std::vector<size_t>{2, 1, 0}));
}

TEST(RejectionSampling, DistinctKeepsOneCompletionPerText) {
  const std::vector<Candidate> c{candidate(0, 20, 1.5, true, "a"), candidate(1, 20, 1.5, true, "a"),
                                 candidate(2, 25, 1.5, true, "b"),
                                 candidate(3, 30, 1.5, true, "a")};
  EXPECT_EQ(select_kept(c, KeepRule{0, true}), (std::vector<size_t>{0, 2}));
  EXPECT_EQ(select_kept(c, KeepRule{0, false}), (std::vector<size_t>{0, 1, 2, 3}));
  EXPECT_EQ(select_kept(c, KeepRule{2, true}), (std::vector<size_t>{0, 2}));
}

TEST(RejectionSampling, NothingAcceptedKeepsNothing) {
  const std::vector<Candidate> c{candidate(0, 20, 0.5, false), candidate(1, 10, 0.0, false)};
  EXPECT_TRUE(select_kept(c, KeepRule{0, false}).empty());
  EXPECT_TRUE(select_kept({}, KeepRule{1, false}).empty());
}

Completion completion(std::string text, int64_t sample) {
  Completion c;
  c.sample = sample;
  c.text = text;
  c.tokens.assign(text.size(), 'x');
  c.finish = FinishReason::Stop;
  return c;
}

TEST(RejectionSampling, TheRuleAcceptsCorrectAndWellFormattedOnly) {
  const AcceptanceOptions a;
  const auto accepted = [&](const std::string& text) {
    const Completion c = completion(text, 3);
    const Candidate k =
        make_candidate(c, rule_reward({"12+34=", text, "46"}, a.weights), nullptr, a);
    EXPECT_EQ(k.sample, 3);
    EXPECT_EQ(k.length, static_cast<int64_t>(text.size()));
    return k.accepted;
  };
  EXPECT_TRUE(accepted("<think>2+4=6;1+3=4</think><answer>46</answer>"));
  EXPECT_FALSE(accepted("<think>2+4=6;1+3=4</think><answer>47</answer>"));  // wrong
  EXPECT_FALSE(accepted("<answer>46</answer>"));                            // no think
  EXPECT_FALSE(accepted("<think>x</think><answer>46"));                     // unclosed
}

TEST(RejectionSampling, AnExternalRewardIsAcceptedFromTheThreshold) {
  AcceptanceOptions a;
  a.min_reward = 0.5;
  const Completion c = completion("anything", 0);
  const RuleReward rule{true, true, 1.5};
  for (const double r : {0.49, 0.5, 0.9}) {
    const Candidate k = make_candidate(c, rule, &r, a);
    EXPECT_EQ(k.accepted, r >= 0.5) << r;
    EXPECT_DOUBLE_EQ(k.reward, r);
  }
}

TEST(RejectionSampling, BadOptionsNameTheFlag) {
  const auto message = [](const RejectionOptions& o) {
    try {
      check_rejection_options(o);
    } catch (const UserError& e) {
      return e.detail();
    }
    return std::string();
  };
  RejectionOptions o;
  o.samples = 0;
  EXPECT_NE(message(o).find("--samples"), std::string::npos) << message(o);
  o = {};
  o.keep.keep = -1;
  EXPECT_NE(message(o).find("--keep"), std::string::npos) << message(o);
  o = {};
  o.sampling.temperature = -0.5;
  EXPECT_NE(message(o).find("--temperature"), std::string::npos) << message(o);
  o = {};
  o.sampling.top_p = 0.0;
  EXPECT_NE(message(o).find("--top-p"), std::string::npos) << message(o);
  EXPECT_EQ(message(RejectionOptions{}), "");
}

// A run on the tiny model with an external reward that pays every third completion (by the
// order it reads them): counts add up, and each prompt keeps its best accepted sample.
TEST(RejectionSampling, RunCountsAddUpAndKeepTheBest) {
  models::DeepSeekV3Model model(testing::grpo_tiny_config(), 7);
  const std::string reward = ::testing::TempDir() + "rejection_reward.py";
  std::ofstream(reward) << "import sys\n"
                           "for i, line in enumerate(sys.stdin):\n"
                           "    print(1 if i % 3 == 0 else 0)\n";
  RejectionOptions o;
  o.samples = 4;
  o.keep = KeepRule{0, false};
  o.sampling.max_new_tokens = 6;
  o.acceptance.reward_command = "/usr/bin/python3 " + reward;
  const std::vector<GrpoPrompt> prompts =
      arithmetic_prompts(1, io::Split::Train, 5, 3, io::ArithmeticOptions{2, 1});
  const RejectionResult all = rejection_sample(model, prompts, o);
  const RejectionCounts& n = all.counts;
  EXPECT_EQ(n.prompts, 3);
  EXPECT_EQ(n.samples, 12);
  EXPECT_EQ(n.accepted, 4);  // completions 0, 3, 6, 9
  EXPECT_EQ(n.kept, 4);
  EXPECT_EQ(n.prompts_with_accepted, 3);
  ASSERT_EQ(all.kept.size(), 4u);
  EXPECT_EQ(all.kept[0].prompt_id, 5u);
  EXPECT_EQ(all.kept[0].sample, 0);
  EXPECT_EQ(all.kept[0].prompt, prompts[0].text);
  EXPECT_EQ(all.kept[0].reference, prompts[0].reference);

  o.keep = KeepRule{1, false};
  const RejectionResult best = rejection_sample(model, prompts, o);
  EXPECT_EQ(best.counts.accepted, 4);
  EXPECT_EQ(best.counts.kept, 3);
  ASSERT_EQ(best.kept.size(), 3u);
  // Prompt 0 accepted samples 0 and 3, ranked by length then sample; best-of-k keeps the first.
  const KeptCompletion& a = all.kept[0];
  const KeptCompletion& b = all.kept[1];
  ASSERT_EQ(b.prompt_id, 5u);
  EXPECT_EQ(std::min(a.sample, b.sample), 0);
  EXPECT_EQ(std::max(a.sample, b.sample), 3);
  EXPECT_TRUE(a.tokens < b.tokens || (a.tokens == b.tokens && a.sample < b.sample));
  EXPECT_EQ(best.kept[0].sample, a.sample);
  EXPECT_EQ(best.kept[0].completion, a.completion);
  // Prompts 1 and 2: completions 6 and 9 are their samples 2 and 1.
  EXPECT_EQ(best.kept[1].prompt_id, 6u);
  EXPECT_EQ(best.kept[1].sample, 2);
  EXPECT_EQ(best.kept[2].prompt_id, 7u);
  EXPECT_EQ(best.kept[2].sample, 1);
  for (const KeptCompletion& k : all.kept) {
    EXPECT_EQ(k.reward, 1.0);
    EXPECT_LE(k.tokens, 6);
  }
}

}  // namespace
}  // namespace trident::train::grpo
