// The cost model on the 671B config and on hand-computable cases: exact parameter counts,
// memory identities, the refusal of a layout that does not fit, the FLOPs formula and the
// schedule closed forms.
#include <gtest/gtest.h>

#include <cmath>
#include <string>

#include "models/deepseek_v3/planner/planner.h"
#include "models/deepseek_v3/planner/report.h"
#include "runtime/core/error.h"
#include "tests/planner/planner_test_configs.h"
#include "tests/support/expect_user_error.h"

namespace trident::models::planner {
namespace {

TEST(Planner, CountsThe671BModelExactly) {
  const Plan plan = make_plan(testing::deepseek_v3_published(), 2048, HardwareSpec{});
  EXPECT_EQ(plan.counts.total, 671026419200);
  EXPECT_EQ(plan.counts.activated, 37552297472);
  EXPECT_EQ(plan.counts.mtp, 11610068224);
  const std::string report = format_plan(plan);
  EXPECT_NE(report.find("671,026,419,200"), std::string::npos) << report;
  EXPECT_NE(report.find("37,552,297,472"), std::string::npos);
  EXPECT_NE(report.find("11,610,068,224"), std::string::npos);
}

TEST(Planner, PublishedLayoutResolvesAsPublished) {
  const Plan plan = make_plan(testing::deepseek_v3_published(), 2048, HardwareSpec{});
  const Layout& l = plan.layout;
  EXPECT_EQ(l.dp, 128);
  EXPECT_EQ(l.edp, 2);
  EXPECT_EQ(l.microbatches, 120);
  ASSERT_EQ(plan.stages.size(), 16u);
  // DualPipeV: rank 0 holds the first and the last chunk, hence the embedding and the head.
  EXPECT_TRUE(plan.stages[0].contents.embedding);
  EXPECT_TRUE(plan.stages[0].contents.head);
  EXPECT_FALSE(plan.stages[0].contents.embedding_copy);
  EXPECT_DOUBLE_EQ(plan.stages[0].memory.inflight, 17.0);
  // ~250 GFLOP per token, the figure DeepSeek-V3's report gives for its training cost.
  EXPECT_GT(plan.flops_per_token.total(), 240e9);
  EXPECT_LT(plan.flops_per_token.total(), 270e9);
}

// Summed over the pipeline ranks of one dp/tp/ep column, the parameters are the model's,
// with routed experts divided by ep and the rest by tp.
TEST(Planner, StagesPartitionTheParameters) {
  config::TridentConfig config = testing::tiny_single_rank(2, 16);
  config.mutable_parallel()->set_pp(2);
  config.mutable_parallel()->set_ep(4);
  config.mutable_parallel()->set_schedule("1f1b");
  config.mutable_train()->set_global_batch(8);
  const Plan plan = make_plan(config, 8, HardwareSpec{});
  ASSERT_EQ(plan.layout.dp, 4);
  int64_t dense = 0, expert = 0;
  for (const StagePlan& s : plan.stages) {
    dense += s.params.dense;
    expert += s.params.expert;
  }
  // tiny: 3 MoE layers (2 main + MTP) × 8 experts × 3 · 16 · 32; the last stage keeps a copy
  // of the 256 × 32 embedding for MTP.
  const int64_t experts = 3 * 8 * 3 * 16 * 32;
  EXPECT_EQ(expert, experts / 4);
  EXPECT_EQ(dense, plan.counts.total + plan.counts.mtp - experts + 256 * 32);
  EXPECT_TRUE(plan.stages[1].contents.embedding_copy);
  // The copy is held and gets a gradient, but stage 0's rank reduces and updates it.
  EXPECT_EQ(plan.stages[1].params.embedding_copy, 256 * 32);
  EXPECT_EQ(plan.stages[0].params.embedding_copy, 0);
}

TEST(Planner, Zero1DividesOptimizerStateByDataParallelism) {
  config::TridentConfig config = testing::deepseek_v3_published();
  const HardwareSpec hw;
  config.mutable_parallel()->set_zero1(false);
  const Plan off = make_plan(config, 2048, hw);
  config.mutable_parallel()->set_zero1(true);
  const Plan on = make_plan(config, 2048, hw);
  for (size_t s = 0; s < on.stages.size(); ++s) {
    const RankParameters& p = on.stages[s].params;
    const MemoryBreakdown& a = off.stages[s].memory;
    const MemoryBreakdown& b = on.stages[s].memory;
    // bf16 weights: fp32 master (4 bytes) + two fp32 moments (8 bytes) per trained parameter.
    // The last stage's embedding copy is updated on stage 0's rank: it has a gradient, and
    // without ZeRO-1 unused moment slots, but no master and no ZeRO-1 shard.
    const double copy = static_cast<double>(p.embedding_copy);
    EXPECT_EQ(p.embedding_copy,
              on.stages[s].contents.embedding_copy ? int64_t{129280} * 7168 : 0);
    EXPECT_DOUBLE_EQ(a.master + a.moments, 12.0 * static_cast<double>(p.trained()) + 8.0 * copy);
    EXPECT_NEAR(b.master + b.moments,
                12.0 * (static_cast<double>(p.dense_trained) / 128.0 +
                        static_cast<double>(p.expert_trained) / 2.0),
                1.0);
    EXPECT_DOUBLE_EQ(a.weights, b.weights);
    EXPECT_DOUBLE_EQ(a.weights, 2.0 * static_cast<double>(p.total()));
    EXPECT_DOUBLE_EQ(a.grads, 4.0 * (static_cast<double>(p.trained()) + copy));
    EXPECT_DOUBLE_EQ(a.activations, b.activations);
  }
}

TEST(Planner, RefusesALayoutThatDoesNotFitNamingWhatOverflows) {
  config::TridentConfig config = testing::deepseek_v3_published();
  config.mutable_parallel()->set_ep(4);  // 64 GPUs: pp 16 × dp 4, experts over only 4 ranks
  const Plan plan = make_plan(config, 64, HardwareSpec{});
  EXPECT_FALSE(plan.fits);
  trident::testing::expect_user_error(
      [&] { check_fits(plan); },
      {"needs", "GiB >", "usable HBM", "optimizer", "ZeRO-1 over dp=4", "activations"});
}

// The tiny model's FLOPs per token worked out by hand (docs/planner.md):
//   MLA matmuls: q_a 16·32 + q_b 4·12·16 + kv_a 20·32 + kv_b 4·16·16 + o 32·32 = 3968
//   dense layer: 3968 + 3·48·32 = 8576 (×2);  MoE layer: 3968 + router 8·32
//   + 2 routed and 1 shared expert 3·3·16·32 = 8832 (×2 main + 1 MTP)
//   MTP eh_proj 32·64 = 2048; lm_head 256·32 used by the main head and MTP: 2·8192
//   N_mm = 17152 + 26496 + 2048 + 16384 = 62080
//   attention at S = 16: 5 layers · 4 heads · (12 + 8) · 16 / 2 = 3200
//   FLOPs = 6 · 62080 + 6 · 3200 = 391680
TEST(Planner, FlopsPerTokenMatchesTheHandComputedFormula) {
  const Plan plan = make_plan(testing::tiny_single_rank(2, 16), 1, HardwareSpec{});
  EXPECT_DOUBLE_EQ(plan.flops_per_token.matmul_params, 62080.0);
  EXPECT_DOUBLE_EQ(plan.flops_per_token.attention, 3200.0);
  EXPECT_DOUBLE_EQ(plan.flops_per_token.total(), 391680.0);
  EXPECT_DOUBLE_EQ(plan.flops_per_token.forward() + plan.flops_per_token.backward_input() +
                       plan.flops_per_token.backward_weight(),
                   391680.0);
}

TEST(Planner, ScheduleClosedForms) {
  Layout l;
  l.pp = 8;
  l.microbatches = 32;
  StageTimes t;
  t.forward = 1.0;
  t.backward_input = 1.0;
  t.backward_weight = 1.0;
  l.schedule = Schedule::k1F1B;
  EXPECT_DOUBLE_EQ(pipeline_bubble(l, t), 7.0 * 3.0);  // (PP−1)(F+B)
  EXPECT_DOUBLE_EQ(inflight_microbatches(l, 0), 8.0);
  EXPECT_DOUBLE_EQ(inflight_microbatches(l, 7), 1.0);
  l.schedule = Schedule::kZbH1;
  EXPECT_DOUBLE_EQ(pipeline_bubble(l, t), 7.0 * 1.0);  // (PP−1)(F+B−2W)
  l.schedule = Schedule::kDualPipeV;
  l.chunks_per_rank = 2;
  EXPECT_DOUBLE_EQ(pipeline_bubble(l, t), 3.0 * (3.0 + 2.0 - 3.0));  // (PP/2−1)(F&B+B−3W)
  EXPECT_DOUBLE_EQ(inflight_microbatches(l, 0), 9.0);
  l.schedule = Schedule::kInterleaved;
  l.chunks_per_rank = 2;
  EXPECT_DOUBLE_EQ(pipeline_bubble(l, t), 7.0 * 3.0 / 2.0);
  EXPECT_DOUBLE_EQ(inflight_microbatches(l, 0), (8.0 + 14.0 + 1.0) / 2.0);
}

TEST(Planner, NodeLimitedRoutingCapsTheNodesATokenReaches) {
  EXPECT_DOUBLE_EQ(expected_nodes_per_token(8, 1, 0), 1.0);
  EXPECT_NEAR(expected_nodes_per_token(8, 8, 0), 8.0 * (1.0 - std::pow(7.0 / 8.0, 8.0)), 1e-12);
  EXPECT_DOUBLE_EQ(expected_nodes_per_token(8, 8, 4), 4.0);
}

TEST(Planner, MapsWorldRanksOntoPipelineStages) {
  const Plan plan = make_plan(testing::deepseek_v3_published(), 2048, HardwareSpec{});
  EXPECT_EQ(stage_of_rank(plan.layout, 0), 0);
  EXPECT_EQ(stage_of_rank(plan.layout, 127), 0);
  EXPECT_EQ(stage_of_rank(plan.layout, 128), 1);
  EXPECT_EQ(&plan_for_rank(plan, 2047), &plan.stages[15]);
  EXPECT_THROW(stage_of_rank(plan.layout, 2048), UserError);
}

TEST(Planner, RejectsLayoutsThatDoNotDivide) {
  EXPECT_THROW(make_plan(testing::deepseek_v3_published(), 2040, HardwareSpec{}), UserError);
  config::TridentConfig config = testing::deepseek_v3_published();
  config.mutable_parallel()->set_ep(48);  // does not divide 256 experts (nor dp)
  EXPECT_THROW(make_plan(config, 2048, HardwareSpec{}), UserError);
}

TEST(Planner, HardwareOverridesNameTheValidFields) {
  HardwareSpec hw;
  apply_hardware_override(hw, "mfu=0.4");
  EXPECT_DOUBLE_EQ(hw.mfu, 0.4);
  apply_hardware_override(hw, "gpus_per_node=4");
  EXPECT_EQ(hw.gpus_per_node, 4);
  try {
    apply_hardware_override(hw, "mfuu=0.4");
    FAIL();
  } catch (const UserError& e) {
    EXPECT_NE(e.detail().find("peak_tflops_bf16"), std::string::npos);
  }
}

}  // namespace
}  // namespace trident::models::planner

namespace trident::models::planner {
namespace {

TEST(Planner, RecomputationTradesActivationMemoryForBackwardFlops) {
  config::TridentConfig config = testing::deepseek_v3_published();
  const HardwareSpec hw;
  PlanOptions options;
  const Plan none = make_plan(config, 2048, hw, options);
  options.recompute = Recompute::kSelective;
  const Plan selective = make_plan(config, 2048, hw, options);
  options.recompute = Recompute::kFull;
  const Plan full = make_plan(config, 2048, hw, options);
  const StagePlan& a = none.stages[3];
  const StagePlan& b = selective.stages[3];
  const StagePlan& c = full.stages[3];
  EXPECT_LT(b.memory.activations, a.memory.activations);
  EXPECT_LT(c.memory.activations, b.memory.activations);
  EXPECT_EQ(a.flops.recompute, 0.0);
  EXPECT_GT(b.flops.recompute, 0.0);
  // Full recomputation runs the decoder layers' forward once more.
  EXPECT_NEAR(c.flops.recompute, c.flops.forward(), 1e-9 * c.flops.forward());
  // Model FLOPs (and so MFU's numerator) do not count recomputation.
  EXPECT_DOUBLE_EQ(none.flops_per_token.total(), full.flops_per_token.total());
  EXPECT_GT(full.step.compute, none.step.compute);
}

}  // namespace
}  // namespace trident::models::planner

namespace trident::models::planner {
namespace {

TEST(Planner, ChunksBalanceLayerCostsWithTheHeadOnTheLastChunk) {
  const std::vector<double> six(6, 1.0), seven(7, 1.0), eight(8, 1.0);
  // One chunk per rank, equal layers, no head cost: an even cut.
  EXPECT_EQ(chunk_first_layers(six, {0, 1, 2}, 0.0), (std::vector<int64_t>{0, 2, 4, 6}));
  // The head costs two layers: 7 layers + 2 = 3 per rank, the last rank keeps one layer.
  EXPECT_EQ(chunk_first_layers(seven, {0, 1, 2}, 2.0), (std::vector<int64_t>{0, 3, 6, 7}));
  // Every chunk keeps at least one layer even when the head alone outweighs the rest.
  EXPECT_EQ(chunk_first_layers({1, 1, 1}, {0, 1, 2}, 10.0), (std::vector<int64_t>{0, 1, 2, 3}));
  // DualPipeV with two ranks: rank 0 holds chunks 0 and 3 (embedding and head); 8 layers + 2
  // balance as 5 and 5.
  const std::vector<int64_t> first = chunk_first_layers(eight, {0, 1, 1, 0}, 2.0);
  ASSERT_EQ(first.size(), 5u);
  const int64_t rank0 = (first[1] - first[0]) + (first[4] - first[3]) + 2;
  const int64_t rank1 = first[3] - first[1];
  EXPECT_EQ(rank0, 5);
  EXPECT_EQ(rank1, 5);
}

}  // namespace
}  // namespace trident::models::planner
