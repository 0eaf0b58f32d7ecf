// The one invariant for GRPO: every layout computes what one rank computes. For every layout of
// the tiny model on the job's ranks (tests/support/layout.h: pp ∈ {1, 2} with each of the four
// schedules at pp = 2, every fold of dp × tp, every ep dividing dp · tp, ZeRO-1 off and on):
//   - 3 GRPO steps (β > 0, μ = 2; the grpo loss, and dr_grpo without ZeRO-1) give one rank's
//     rollouts and rewards exactly, its loss, gradient norm, KL and entropy to fp32 round-off
//     (grpo_runs.h), the same metrics on every rank, and one rank's final policy within 1e-5 in
//     every slice a rank holds, a policy the updates did move;
//   - decoding through the stages gives one rank's completions, token for token, greedy and
//     sampled, with each dp chain decoding different prompts for a different number of tokens
//     (so expert-parallel ranks run filler steps), and the last stage's logits to round-off;
//     held-out evaluation agrees on every rank.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "runtime/io/tokenizer.h"
#include "runtime/train/grpo/evaluate.h"
#include "runtime/train/grpo/generate.h"
#include "tests/support/grpo_runs.h"
#include "tests/support/layout.h"
#include "tests/support/layout_runs.h"
#include "tests/support/mpi_helpers.h"

namespace trident::testing {
namespace {

using train::grpo::Completion;
using train::grpo::GenerationRequest;
using train::grpo::SamplingOptions;

constexpr int64_t kSteps = 3;

class GrpoLayouts : public ::testing::TestWithParam<Layout> {
 protected:
  void SetUp() override {
    if (GetParam().ranks() != world_size()) {
      GTEST_SKIP() << GetParam().name() << " runs on " << GetParam().ranks() << " ranks";
    }
    config_ = grpo_layout_config();
    GetParam().apply(config_);
  }
  config::TridentConfig config_;
};

void steps_match_one_rank(const config::TridentConfig& config, const std::string& loss_type) {
  const train::grpo::GrpoOptions options = grpo_test_options(config, loss_type);
  const GrpoRun& one = one_rank_grpo(config, options, kSteps);
  GrpoRun run = make_grpo_run(config, options);
  run.run(kSteps);
  for (int64_t s = 0; s < kSteps; ++s) {
    SCOPED_TRACE("step " + std::to_string(s + 1));
    expect_grpo_step_matches(run.steps[static_cast<size_t>(s)], one.steps[static_cast<size_t>(s)]);
    EXPECT_GT(run.steps[static_cast<size_t>(s)].kl, 0.0);
  }
  EXPECT_LE(held_weight_error(run.policy->params(), one.policy->params()), 1e-5);
  // The updates must have moved the policy, or the comparison proves nothing.
  const GrpoRun fresh = make_grpo_run(config, options);
  EXPECT_GT(held_weight_error(fresh.policy->params(), one.policy->params()), 1e-4);
}

TEST_P(GrpoLayouts, StepsMatchOneRank) { steps_match_one_rank(config_, "grpo"); }

TEST_P(GrpoLayouts, DrGrpoStepsMatchOneRank) {
  if (GetParam().zero1) GTEST_SKIP() << "the optimizer path is covered by the grpo loss";
  steps_match_one_rank(config_, "dr_grpo");
}

// This dp chain's prompts: different ones (and lengths) per chain.
std::vector<GenerationRequest> chain_requests(int dp_rank) {
  std::vector<GenerationRequest> out;
  const std::vector<std::string> texts = {"12+7=", "3*4=", "100-58=", "9+9+9=", "7*8="};
  for (int i = 0; i <= dp_rank + 1 && i < static_cast<int>(texts.size()); ++i) {
    const size_t t = static_cast<size_t>((i * 2 + dp_rank) % static_cast<int>(texts.size()));
    out.push_back(GenerationRequest{static_cast<uint64_t>(10 * dp_rank + i),
                                    io::ByteTokenizer::encode(texts[t]), 2});
  }
  return out;
}

void expect_same_generation(const std::vector<Completion>& got, const std::vector<Completion>& one,
                            bool last_stage) {
  ASSERT_EQ(got.size(), one.size());
  for (size_t i = 0; i < one.size(); ++i) {
    SCOPED_TRACE("completion " + std::to_string(i) + " on rank " + std::to_string(world_rank()));
    EXPECT_EQ(got[i].tokens, one[i].tokens);
    EXPECT_EQ(got[i].text, one[i].text);
    EXPECT_EQ(got[i].finish, one[i].finish);
    if (!last_stage) continue;
    ASSERT_EQ(got[i].step_logits.size(), one[i].step_logits.size());
    for (size_t s = 0; s < one[i].step_logits.size(); ++s) {
      const int64_t vocab = static_cast<int64_t>(one[i].step_logits[s].size());
      EXPECT_LE(relative_error(Tensor::from_vector(got[i].step_logits[s], {vocab}),
                               Tensor::from_vector(one[i].step_logits[s], {vocab})),
                1e-5)
          << "step " << s;
    }
  }
}

TEST_P(GrpoLayouts, DecodeMatchesOneRank) {
  if (GetParam().zero1) GTEST_SKIP() << "decoding does not involve the optimizer";
  const train::grpo::GrpoOptions options = grpo_test_options(config_, "grpo");
  GrpoRun run = make_grpo_run(config_, options);
  config::TridentConfig alone = config_;
  Layout{}.apply(alone);
  GrpoRun one = make_grpo_run(alone, options);
  const int dp_rank = run.context->rank(parallel::MeshAxis::Dp);
  const std::vector<GenerationRequest> requests = chain_requests(dp_rank);
  for (const double temperature : {0.0, 1.5}) {
    SCOPED_TRACE("temperature " + std::to_string(temperature));
    SamplingOptions sampling;
    sampling.temperature = temperature;
    sampling.top_p = temperature > 0 ? 0.95 : 1.0;
    sampling.max_new_tokens = 5 + dp_rank;  // chains of different lengths
    sampling.stop = {"="};
    sampling.seed = 3;
    sampling.record_logits = true;
    const std::vector<Completion> got =
        train::grpo::generate(run.trainer->decoder(), requests, sampling, &run.trainer->lockstep());
    const std::vector<Completion> want = train::grpo::generate(*one.policy, requests, sampling);
    expect_same_generation(got, want, run.trainer->decoder().last_stage());
  }
  SamplingOptions eval;
  eval.max_new_tokens = 4;
  const train::grpo::EvalResult e = train::grpo::evaluate_arithmetic(
      run.trainer->decoder(), 5, 3, io::ArithmeticOptions{}, eval, &run.trainer->lockstep());
  const train::grpo::EvalResult o =
      train::grpo::evaluate_arithmetic(*one.policy, 5, 3, io::ArithmeticOptions{}, eval);
  EXPECT_EQ(e.completion_length, o.completion_length);
  EXPECT_EQ(e.accuracy, o.accuracy);
  EXPECT_TRUE(same_on_every_rank(e.completion_length));
}

INSTANTIATE_TEST_SUITE_P(Tiny, GrpoLayouts,
                         ::testing::ValuesIn(layouts_on({2, 4, 8}, /*heads=*/4, /*experts=*/8)),
                         LayoutName());

}  // namespace
}  // namespace trident::testing
