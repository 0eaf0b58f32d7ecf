// The stage split of the model (models/deepseek_v3/parallelize/pipeline_partition.h): layer counts,
// explicit counts and their errors, what each rank holds in the three layouts, and the schedule
// fields.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "models/deepseek_v3/parallelize/pipeline_partition.h"
#include "runtime/config/config.h"
#include "runtime/core/error.h"
#include "tests/support/expect_user_error.h"

namespace trident::models::parallelize {
namespace {

using Counts = std::vector<int64_t>;

TEST(StageLayerCounts, EvenSplitGivesTheRemainderToTheMiddleFirst) {
  EXPECT_EQ(stage_layer_counts(8, 4, {}), (Counts{2, 2, 2, 2}));
  EXPECT_EQ(stage_layer_counts(6, 4, {}), (Counts{1, 2, 2, 1}));
  EXPECT_EQ(stage_layer_counts(7, 4, {}), (Counts{1, 2, 2, 2}));
  EXPECT_EQ(stage_layer_counts(3, 4, {}), (Counts{0, 1, 1, 1}));
  EXPECT_EQ(stage_layer_counts(4, 8, {}), (Counts{0, 1, 1, 1, 1, 0, 0, 0}));
  EXPECT_EQ(stage_layer_counts(5, 2, {}), (Counts{2, 3}));
}

TEST(StageLayerCounts, ExplicitCountsAreCheckedAgainstStagesAndLayers) {
  EXPECT_EQ(stage_layer_counts(4, 2, {0, 4}), (Counts{0, 4}));
  auto message = [](const Counts& counts) {
    try {
      stage_layer_counts(4, 2, counts);
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  EXPECT_NE(message({1, 1, 2}).find("parallel.stage_layers has 3 entries"), std::string::npos);
  EXPECT_NE(message({1, 2}).find("num_hidden_layers = 4"), std::string::npos);
  EXPECT_NE(message({-1, 5}).find("negative"), std::string::npos);
}

TEST(PipelinePartition, StagesAreContiguousWithEmbeddingFirstAndHeadLast) {
  const PipelinePartition p = partition_model(8, parallel::pp::StageLayout::interleaved(2, 2), {});
  ASSERT_EQ(p.stages.size(), 4u);
  int64_t next = 0;
  for (size_t s = 0; s < p.stages.size(); ++s) {
    EXPECT_EQ(p.stages[s].first_layer, next);
    next = p.stages[s].last_layer;
    EXPECT_EQ(p.stages[s].embedding, s == 0);
    EXPECT_EQ(p.stages[s].head, s == 3);
  }
  EXPECT_EQ(next, 8);
  // Interleaved: rank 0 runs stages 0 and 2, rank 1 stages 1 and 3 (the head).
  const models::PipelineHolding r0 = holding_of_rank(p, 0, 1);
  const models::PipelineHolding r1 = holding_of_rank(p, 1, 1);
  EXPECT_EQ(r0.layers, (std::vector<bool>{true, true, false, false, true, true, false, false}));
  EXPECT_TRUE(r0.embedding);
  EXPECT_FALSE(r0.head);
  EXPECT_TRUE(r1.head);
  EXPECT_TRUE(r1.embedding) << "MTP on the last stage needs its copy of the embedding";
  EXPECT_TRUE(p.embedding_copy(1));
  EXPECT_FALSE(p.embedding_copy(0));
  EXPECT_FALSE(holding_of_rank(p, 1, 0).embedding) << "no MTP, no copy";
}

TEST(PipelinePartition, VShapeKeepsEmbeddingAndHeadOnRankZero) {
  const PipelinePartition p = partition_model(8, parallel::pp::StageLayout::v_shape(2), {});
  EXPECT_EQ(p.first_rank(), 0);
  EXPECT_EQ(p.last_rank(), 0);
  EXPECT_FALSE(p.embedding_copy(1));
  const models::PipelineHolding r0 = holding_of_rank(p, 0, 1);
  const models::PipelineHolding r1 = holding_of_rank(p, 1, 1);
  EXPECT_TRUE(r0.embedding && r0.head);
  EXPECT_FALSE(r1.embedding || r1.head);
  EXPECT_EQ(r1.layers, (std::vector<bool>{false, false, true, true, true, true, false, false}));
}

TEST(LayoutForSchedule, NamesTheFieldsAtFault) {
  config::ParallelConfig parallel;
  parallel.set_pp(2);
  parallel.set_schedule("dualpipev");
  EXPECT_EQ(layout_for_schedule(parallel).kind, parallel::pp::LayoutKind::VShape);
  parallel.set_schedule("interleaved");
  EXPECT_THROW(layout_for_schedule(parallel), Error);
  parallel.set_virtual_stages(3);
  EXPECT_EQ(layout_for_schedule(parallel).num_stages(), 6);
  parallel.set_schedule("1f1b");
  trident::testing::expect_user_error([&] { layout_for_schedule(parallel); },
                                      {"parallel.virtual_stages"});
  parallel.set_schedule("gpipe");
  trident::testing::expect_user_error([&] { layout_for_schedule(parallel); },
                                      {"parallel.schedule = 'gpipe'"});
}

}  // namespace
}  // namespace trident::models::parallelize
