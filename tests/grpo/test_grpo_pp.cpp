// GRPO under pipeline parallelism under mpirun: parallel.pp = 2 with the remaining ranks as dp
// (2 ranks: pp = 2; 4 ranks: pp = 2 · dp = 2), optionally with the routed experts split over
// ep = 2 on each stage (the "Ep2" tests, 4 ranks). Every stage holds only its own layers (stage 0
// the embedding, stage 1 the norm and lm_head).
//
// Decoding through the stages must give the same tokens as one rank holding the whole model,
// greedy and sampled, and the same logits at every step; each dp chain decodes different prompts
// (different lengths, completions that stop at different steps), which under ep exercises the
// per-stage lock step. Each GRPO step (β > 0, μ = 2) must equal one rank holding the whole model
// and batch: the same rollouts and rewards, loss and gradient norm, and every held parameter
// equal to the one-rank model's after each step.
//
// The "Tp2" tests (4 ranks) run pp = 2 · tp = 2: each stage's two TP ranks hold slices of its
// attention, dense FFN, shared experts (and the embedding or lm_head), and each sends its
// activations to the same-TP-rank of the next stage. The last stage samples from the gathered
// vocabulary rows and scores with the vocabulary-parallel log-softmax; every held slice must equal
// the same slice of the one-rank tensor.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <memory>
#include <string>
#include <vector>

#include "parallel/comm/mpi_backend.h"
#include "parallel/comm/mpi_comm.h"
#include "parallel/ep/expert_parallel_moe.h"
#include "parallel/ep/token_split_moe.h"
#include "parallel/mesh.h"
#include "runtime/config/config.h"
#include "runtime/io/tokenizer.h"
#include "runtime/train/grpo/evaluate.h"
#include "runtime/train/grpo/grpo_trainer.h"
#include "runtime/train/grpo/pipeline_generate.h"
#include "tests/grpo/grpo_step_match.h"
#include "tests/grpo/grpo_test_model.h"
#include "tests/parallel/test_helpers.h"

namespace trident::train::grpo {
namespace {

using parallel::testing::same_on_every_rank;
using parallel::testing::world_rank;
using parallel::testing::world_size;

// The init seed. With seed 7 and this config one rarely routed expert of the plain EP layout
// (dp = 2, ep = 2, no pp) already ends 2.5e-5 away from one rank after 3 steps: AdamW turns the
// round-off of its near-cancelling gradient elements into whole steps. The stages add no
// difference of their own (the pp = 2 · ep = 2 run reproduces that EP run's deviations), so the
// comparison uses a seed whose experts' gradients are not that close to cancelling.
uint64_t model_seed() { return 11; }

// pp = 2 over the world, tp (1 or 2), dp = the rest, and ep (1 or 2) folded over each stage's dp
// ranks; the model's stage (its TP slices and expert share) of this rank.
struct PipelineFixture {
  config::ParallelConfig layout;
  std::unique_ptr<parallel::Mesh> mesh;
  std::shared_ptr<parallel::MpiBackend> pp, dp, tp, ep, edp;
  config::ModelConfig model_config;
  GrpoParallel parallel;
  std::unique_ptr<models::DeepSeekV3Model> model;

  explicit PipelineFixture(int ep_size, int tp_size = 1) {
    const int ranks = world_size();
    layout.set_pp(2);
    layout.set_tp(tp_size);
    layout.set_dp(ranks / 2 / tp_size);
    layout.set_ep(ep_size);
    mesh = std::make_unique<parallel::Mesh>(parallel::mesh_sizes_from_config(layout));
    pp = std::make_shared<parallel::MpiBackend>(mesh->pp());
    dp = std::make_shared<parallel::MpiBackend>(mesh->dp());
    model_config = testing::grpo_tiny_config(0.05);
    // One dense layer, then MoE layers: both stages hold an MoE layer (under ep both stages'
    // forwards are collectives).
    model_config.set_first_k_dense_replace(1);
    parallel.pp = pp.get();
    parallel.dp = dp.get();
    models::ModelParallel stage;
    if (tp_size > 1) {
      tp = std::make_shared<parallel::MpiBackend>(mesh->tp());
      stage.tp = tp.get();
      stage.tp_rank = tp->rank();
      stage.tp_size = tp->size();
    }
    if (ep_size > 1) {
      ep = std::make_shared<parallel::MpiBackend>(mesh->ep());
      edp = std::make_shared<parallel::MpiBackend>(mesh->edp());
      parallel.ep = ep.get();
      parallel.edp = edp.get();
      // With tp as well each TP rank dispatches its share of the tokens (token split).
      parallel.setup = parallel::ep::expert_parallel_setup(model_config, layout, ep, tp);
    }
    stage.pipeline = grpo_pipeline_holding(model_config.num_hidden_layers(), 2, pp->rank(), {});
    model = std::make_unique<models::DeepSeekV3Model>(model_config, model_seed(), stage,
                                                      parallel.setup);
  }
};

// Every parameter this rank holds equals the one-rank model's of the same name (the same slice
// of it under TP); returns how many were compared.
int64_t expect_held_parameters_match(const models::DeepSeekV3Model& staged,
                                     const models::DeepSeekV3Model& one) {
  int64_t compared = 0;
  for (const models::Parameter& p : staged.params().parameters()) {
    const Tensor expected = testing::slice_of(one.params().get(p.spec->name).value, p.slice);
    const Tensor mine = Tensor::empty({p.value.numel()});
    std::copy_n(p.value.data<float>(), p.value.numel(), mine.data<float>());
    EXPECT_LE(relative_error(mine, expected), 1e-5)
        << p.spec->name << " on rank " << world_rank();
    ++compared;
  }
  return compared;
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

void expect_same_generation(const std::vector<Completion>& staged,
                            const std::vector<Completion>& one, bool last_stage) {
  ASSERT_EQ(staged.size(), one.size());
  for (size_t i = 0; i < one.size(); ++i) {
    SCOPED_TRACE("completion " + std::to_string(i) + " on rank " + std::to_string(world_rank()));
    EXPECT_EQ(staged[i].tokens, one[i].tokens);
    EXPECT_EQ(staged[i].text, one[i].text);
    EXPECT_EQ(staged[i].finish, one[i].finish);
    if (!last_stage) continue;
    ASSERT_EQ(staged[i].step_logits.size(), one[i].step_logits.size());
    for (size_t s = 0; s < one[i].step_logits.size(); ++s) {
      const Tensor a = Tensor::from_vector(staged[i].step_logits[s],
                                           {static_cast<int64_t>(one[i].step_logits[s].size())});
      const Tensor b = Tensor::from_vector(one[i].step_logits[s],
                                           {static_cast<int64_t>(one[i].step_logits[s].size())});
      EXPECT_LE(relative_error(a, b), 1e-5) << "step " << s;
    }
  }
}

void decode_matches_one_rank(int ep_size, int tp_size = 1) {
  PipelineFixture f(ep_size, tp_size);
  models::DeepSeekV3Model one_model(f.model_config, model_seed());
  StagedPolicy staged(*f.model, f.pp.get());
  ASSERT_TRUE(staged.pipelined());
  ASSERT_LT(f.model->params().numel(), one_model.params().numel()) << "the stages are not split";
  ForwardLockstep lockstep(f.parallel.ep);
  const std::vector<GenerationRequest> requests = chain_requests(f.dp->rank());
  for (const double temperature : {0.0, 1.5}) {
    SCOPED_TRACE("temperature " + std::to_string(temperature));
    SamplingOptions options;
    options.temperature = temperature;
    options.top_p = temperature > 0 ? 0.95 : 1.0;
    options.max_new_tokens = 5 + f.dp->rank();  // chains of different lengths
    options.stop = {"="};
    options.seed = 3;
    options.record_logits = true;
    const std::vector<Completion> a = generate_staged(staged, requests, options, &lockstep);
    const std::vector<Completion> b = generate(one_model, requests, options);
    expect_same_generation(a, b, staged.last_stage());
  }
  // Held-out evaluation through the stages equals the one-rank one, on every rank.
  SamplingOptions eval;
  eval.max_new_tokens = 4;
  const EvalResult e = evaluate_arithmetic(staged, 5, 3, io::ArithmeticOptions{}, eval, &lockstep);
  const EvalResult o = evaluate_arithmetic(one_model, 5, 3, io::ArithmeticOptions{}, eval);
  EXPECT_EQ(e.completion_length, o.completion_length);
  EXPECT_EQ(e.accuracy, o.accuracy);
  EXPECT_TRUE(same_on_every_rank(e.completion_length));
}

void steps_match_one_rank(int ep_size, const std::string& loss_type, int tp_size = 1) {
  PipelineFixture f(ep_size, tp_size);
  models::DeepSeekV3Model one_model(f.model_config, model_seed());
  const GrpoOptions options = multi_rank_test_options(loss_type);
  GrpoTrainer staged(*f.model, options, f.parallel);
  GrpoTrainer one(one_model, options);
  for (int64_t step = 1; step <= 3; ++step) {
    SCOPED_TRACE("step " + std::to_string(step));
    const GrpoStepMetrics a = staged.step(step);
    const GrpoStepMetrics b = one.step(step);
    expect_step_matches_one_rank(a, b);
    EXPECT_EQ(a.reward_std, b.reward_std);
    EXPECT_GT(a.kl, 0.0);
    EXPECT_TRUE(same_on_every_rank(a.entropy));
    EXPECT_GT(expect_held_parameters_match(*f.model, one_model), 0);
  }
  if (tp_size > 1) {  // the comparison above ran on slices
    const models::Parameter& mine = f.model->params().get(
        f.pp->rank() == 0 ? "model.embed_tokens.weight" : "lm_head.weight");
    EXPECT_GE(mine.slice.dim, 0) << mine.spec->name << " is not split";
  }
  // The update must have moved the policy, or the comparison proves nothing.
  models::DeepSeekV3Model initial(f.model_config, model_seed());
  EXPECT_GT(relative_error(one_model.params().flat_values(), initial.params().flat_values()),
            1e-4);
}

TEST(GrpoPipelineEp1, DecodeMatchesOneRank) { decode_matches_one_rank(1); }
TEST(GrpoPipelineEp1, StepsMatchOneRankGrpo) { steps_match_one_rank(1, "grpo"); }
TEST(GrpoPipelineEp1, StepsMatchOneRankDrGrpo) { steps_match_one_rank(1, "dr_grpo"); }

TEST(GrpoPipelineEp2, DecodeMatchesOneRank) {
  if (world_size() < 4) GTEST_SKIP() << "ep = 2 under pp = 2 needs 4 ranks";
  decode_matches_one_rank(2);
}
TEST(GrpoPipelineEp2, StepsMatchOneRank) {
  if (world_size() < 4) GTEST_SKIP() << "ep = 2 under pp = 2 needs 4 ranks";
  steps_match_one_rank(2, "grpo");
}

TEST(GrpoPipelineTp2, DecodeMatchesOneRank) {
  if (world_size() != 4) GTEST_SKIP() << "pp = 2 · tp = 2 runs on 4 ranks";
  decode_matches_one_rank(1, 2);
}
TEST(GrpoPipelineTp2, StepsMatchOneRankGrpo) {
  if (world_size() != 4) GTEST_SKIP() << "pp = 2 · tp = 2 runs on 4 ranks";
  steps_match_one_rank(1, "grpo", 2);
}
TEST(GrpoPipelineTp2, StepsMatchOneRankDrGrpo) {
  if (world_size() != 4) GTEST_SKIP() << "pp = 2 · tp = 2 runs on 4 ranks";
  steps_match_one_rank(1, "dr_grpo", 2);
}

// pp = 2 · tp = 2 · ep = 2 (dp = 1): in each stage the EP group is the TP group.
TEST(GrpoPipelineTp2Ep2, DecodeMatchesOneRank) {
  if (world_size() != 4) GTEST_SKIP() << "pp = 2 · tp = 2 · ep = 2 runs on 4 ranks";
  decode_matches_one_rank(2, 2);
}
TEST(GrpoPipelineTp2Ep2, StepsMatchOneRank) {
  if (world_size() != 4) GTEST_SKIP() << "pp = 2 · tp = 2 · ep = 2 runs on 4 ranks";
  steps_match_one_rank(2, "grpo", 2);
}

}  // namespace
}  // namespace trident::train::grpo
