// Rule rewards and the external reward command, including its failure modes.
#include <gtest/gtest.h>

#include <cstdio>
#include <fstream>
#include <string>

#include "runtime/core/error.h"
#include "runtime/train/grpo/rewards.h"

namespace trident::train::grpo {
namespace {

const std::vector<RewardInput> kInputs{
    {"12+34=", "<think>2+4=6;1+3=4</think><answer>46</answer>", "46"},
    {"12+34=", "<answer>47</answer>", "46"},
    {"5+5=", "<think>x</think><answer> 010 </answer>", "10"}};

TEST(GrpoRewards, RuleRewardsWeighAccuracyAndFormat) {
  const RuleRewardWeights w{1.0, 0.5};
  const RuleReward a = rule_reward(kInputs[0], w);
  EXPECT_TRUE(a.correct);
  EXPECT_TRUE(a.format);
  EXPECT_DOUBLE_EQ(a.reward, 1.5);
  const RuleReward b = rule_reward(kInputs[1], w);
  EXPECT_FALSE(b.correct);
  EXPECT_FALSE(b.format);
  EXPECT_DOUBLE_EQ(b.reward, 0.0);
  const RuleReward c = rule_reward(kInputs[2], RuleRewardWeights{2.0, 0.25});
  EXPECT_TRUE(c.correct);  // numeric comparison
  EXPECT_DOUBLE_EQ(c.reward, 2.25);
}

// A script file in the test's temporary directory.
std::string script(const std::string& name, const std::string& body) {
  const std::string path = ::testing::TempDir() + "grpo_reward_" + name;
  std::ofstream(path) << body;
  return path;
}

std::string error_of(const std::string& command, double timeout = 10.0) {
  try {
    external_rewards(command, kInputs, timeout);
  } catch (const std::exception& e) {
    return e.what();
  }
  return "";
}

TEST(GrpoRewards, ExternalCommandReadsJsonlAndWritesOneNumberPerLine) {
  const std::string py = script("ok.py",
                                "import json, sys\n"
                                "for line in sys.stdin:\n"
                                "    r = json.loads(line)\n"
                                "    ok = r['reference'] in r['completion']\n"
                                "    print(len(r['prompt']) + (10 if ok else 0))\n");
  const std::vector<double> r = external_rewards("/usr/bin/python3 " + py, kInputs, 30.0);
  ASSERT_EQ(r.size(), 3u);
  EXPECT_DOUBLE_EQ(r[0], 16.0);
  EXPECT_DOUBLE_EQ(r[1], 6.0);
  EXPECT_DOUBLE_EQ(r[2], 14.0);
}

TEST(GrpoRewards, ExternalCommandFailuresAreErrorsNotZeros) {
  EXPECT_NE(error_of("cat > /dev/null; echo boom >&2; exit 3").find("exited with status 3"),
            std::string::npos);
  EXPECT_NE(error_of("cat > /dev/null; echo boom >&2; exit 3").find("boom"), std::string::npos);
  EXPECT_NE(error_of("cat > /dev/null; echo 1; echo 2").find("2 reward lines for 3"),
            std::string::npos);
  EXPECT_NE(error_of("cat > /dev/null; echo 1; echo abc; echo 3").find("'abc' on line 2"),
            std::string::npos);
  EXPECT_NE(error_of("cat > /dev/null; echo 1; echo nan; echo 3").find("not a finite number"),
            std::string::npos);
  EXPECT_NE(error_of("sleep 20", 0.5).find("did not finish within"), std::string::npos);
  EXPECT_NE(error_of("kill -9 $$").find("signal 9"), std::string::npos);
  // A command that ignores its input still gets a clear answer check.
  const std::vector<double> ok = external_rewards("printf '1\\n2.5\\n-3\\n'", kInputs, 10.0);
  EXPECT_EQ(ok, (std::vector<double>{1.0, 2.5, -3.0}));
}

TEST(GrpoRewards, ExternalCommandOutlivesTheJobsStopSignals) {
  // Under Slurm a preemption signal reaches every process of the step: the command (and what
  // it runs) must finish the step's rewards, not die of it; the run then saves and stops.
  const std::vector<double> r = external_rewards(
      "kill -USR1 $$; kill -TERM $$; kill -INT $$; /usr/bin/python3 -c 'import os, signal; "
      "os.kill(os.getpid(), signal.SIGUSR1)'; cat > /dev/null; printf '1\\n2\\n3\\n'",
      kInputs, 10.0);
  EXPECT_EQ(r, (std::vector<double>{1.0, 2.0, 3.0}));
}

}  // namespace
}  // namespace trident::train::grpo
