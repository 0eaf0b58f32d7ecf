// Data-parallel pieces that need no MPI: the bucket plan and ZeRO-1 shard layout, the ZeRO-1
// state's memory (counted by the allocator), and the reducer's readiness by gradient block.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <vector>

#include "models/deepseek_v3/model.h"
#include "models/deepseek_v3/parallelize/gradient_layout.h"
#include "parallel/dp/bucket_plan.h"
#include "parallel/dp/grad_reducer.h"
#include "parallel/dp/zero1_state.h"
#include "runtime/config/config.h"
#include "runtime/core/allocator.h"

namespace trident::parallel::dp {
namespace {

config::TridentConfig tiny_config() {
  return config::load_config(config::resolve_config_path("tiny"));
}

std::vector<ParamExtent> extents_of(const models::DeepSeekV3Model& model) {
  const models::parallelize::GradientBlocks blocks(model.num_layers());
  std::vector<ParamExtent> extents;
  for (const models::Parameter& p : model.params().parameters()) {
    extents.push_back(ParamExtent{p.offset, p.value.numel(), blocks.of(*p.spec), p.spec->trained,
                                  p.spec->weight_decay});
  }
  return extents;
}

// A made-up parameter list with a gap, odd sizes and every flag combination.
std::vector<ParamExtent> synthetic_params() {
  return {{0, 37, 3, true, true},
          {37, 5, 2, true, false},
          {42, 11, 0, false, false},
          {60, 100, 1, true, true},
          {160, 3, 1, true, false}};
}

TEST(BucketPlan, TilesTheBufferFromTheEndWithEachBucketsBlocks) {
  const std::vector<ParamExtent> params = synthetic_params();
  for (int dp : {1, 2, 3, 4}) {
    for (int64_t bucket : {1, 7, 16, 1000}) {
      const BucketPlan plan = plan_buckets(params, 163, bucket, dp);
      std::vector<int> covered(163, 0);
      int64_t shard = 0;
      for (size_t i = 0; i < plan.buckets.size(); ++i) {
        const GradBucket& b = plan.buckets[i];
        for (int64_t e = b.begin; e < b.end; ++e) ++covered[static_cast<size_t>(e)];
        EXPECT_EQ(b.padded % dp, 0);
        EXPECT_EQ(b.block * dp, b.padded);
        EXPECT_LT(b.padded - b.size(), dp);
        if (b.begin != 0) {
          EXPECT_EQ(b.size() % dp, 0) << "only the first bucket is ragged";
        }
        EXPECT_EQ(b.shard_offset, shard);
        shard += b.block;
        if (i > 0) {
          EXPECT_EQ(b.end, plan.buckets[i - 1].begin) << "cut from the end backwards";
        }
        std::vector<int> blocks;
        for (const ParamExtent& p : params) {
          if (p.offset < b.end && p.offset + p.numel > b.begin) blocks.push_back(p.block);
        }
        std::sort(blocks.begin(), blocks.end());
        blocks.erase(std::unique(blocks.begin(), blocks.end()), blocks.end());
        EXPECT_EQ(b.blocks, blocks);
      }
      EXPECT_EQ(plan.shard_numel, shard);
      for (int c : covered) ASSERT_EQ(c, 1) << "dp " << dp << " bucket " << bucket;
    }
  }
}

TEST(BucketPlan, ShardsCoverEveryElementOnceWithItsFlags) {
  const std::vector<ParamExtent> params = synthetic_params();
  for (int dp : {1, 2, 3, 4}) {
    const BucketPlan plan = plan_buckets(params, 163, 16, dp);
    std::vector<int> owners(163, 0);
    for (int rank = 0; rank < dp; ++rank) {
      int64_t last_shard_end = 0;
      for (const ShardSegment& s : shard_segments(plan, rank, params)) {
        EXPECT_GE(s.shard_offset, last_shard_end);
        last_shard_end = s.shard_offset + s.count;
        EXPECT_LE(last_shard_end, plan.shard_numel);
        for (int64_t e = s.flat_offset; e < s.flat_offset + s.count; ++e) {
          ++owners[static_cast<size_t>(e)];
          bool trained = false, decay = false;  // the gap [53, 60) is untrained
          for (const ParamExtent& p : params) {
            if (p.offset <= e && e < p.offset + p.numel) {
              trained = p.trained;
              decay = p.decay;
            }
          }
          EXPECT_EQ(s.trained, trained) << "element " << e;
          EXPECT_EQ(s.decay, decay) << "element " << e;
        }
      }
    }
    for (int c : owners) ASSERT_EQ(c, 1) << "dp " << dp;
  }
}

// The optimizer state of one ZeRO-1 rank is 3 fp32 values (master, m, v) per shard element,
// allocated through the allocator, and the shard is 1/dp of the model (plus < dp padding per
// bucket).
// Parameters reduced over different groups (dense over dp, routed experts over edp) get one
// plan each over their own ranges: together the plans tile every parameter exactly once, and
// no bucket crosses into the other group's parameters.
TEST(BucketPlan, RangesSplitTheBufferBetweenGroups) {
  // Offsets: dense [0,10), expert [10,17), expert [17,20), dense [20,33), expert [33,40).
  std::vector<ParamExtent> params(5);
  const int64_t offsets[] = {0, 10, 17, 20, 33}, sizes[] = {10, 7, 3, 13, 7};
  std::vector<bool> expert{false, true, true, false, true}, dense(5);
  for (size_t i = 0; i < params.size(); ++i) {
    params[i].offset = offsets[i];
    params[i].numel = sizes[i];
    params[i].block = static_cast<int>(4 - i);
    dense[i] = !expert[i];
  }
  const std::vector<FlatRange> expert_ranges = member_ranges(params, expert);
  ASSERT_EQ(expert_ranges.size(), 2u);
  EXPECT_EQ(expert_ranges[0].begin, 10);
  EXPECT_EQ(expert_ranges[0].end, 20);
  EXPECT_EQ(expert_ranges[1].begin, 33);
  EXPECT_EQ(expert_ranges[1].end, 40);
  const BucketPlan dense_plan = plan_buckets(params, 40, 4, 2, member_ranges(params, dense));
  const BucketPlan expert_plan = plan_buckets(params, 40, 4, 3, expert_ranges);
  std::vector<int> covered(40, 0);
  for (const BucketPlan* plan : {&dense_plan, &expert_plan}) {
    for (const GradBucket& b : plan->buckets) {
      for (int64_t i = b.begin; i < b.end; ++i) ++covered[static_cast<size_t>(i)];
      // A bucket lies inside one group's parameters.
      for (size_t p = 0; p < params.size(); ++p) {
        const bool overlaps =
            params[p].offset < b.end && params[p].offset + params[p].numel > b.begin;
        if (!overlaps) continue;
        EXPECT_EQ(expert[p], plan == &expert_plan) << "bucket [" << b.begin << ", " << b.end << ")";
      }
    }
  }
  for (int64_t i = 0; i < 40; ++i) EXPECT_EQ(covered[static_cast<size_t>(i)], 1) << "element " << i;
}

TEST(Zero1State, OptimizerMemoryPerRankShrinksByDp) {
  const config::TridentConfig config = tiny_config();
  const models::DeepSeekV3Model model(config.model(), 1);
  const std::vector<ParamExtent> extents = extents_of(model);
  const int64_t n = model.params().numel();
  Allocator& allocator = Allocator::instance(Device::CPU);
  int64_t single_rank_bytes = 0;
  for (int dp : {1, 2, 4}) {
    const BucketPlan plan = plan_buckets(extents, n, 4096, dp);
    const int64_t buckets = static_cast<int64_t>(plan.buckets.size());
    for (int rank = 0; rank < dp; ++rank) {
      const int64_t before = allocator.stats().current_bytes;
      const Zero1State state(plan, rank, extents);
      const int64_t counted = allocator.stats().current_bytes - before;
      EXPECT_EQ(counted, state.bytes());
      EXPECT_EQ(counted, 12 * plan.shard_numel);
      EXPECT_LE(plan.shard_numel * dp, n + buckets * (dp - 1));
      EXPECT_GE(plan.shard_numel * dp, n);
      if (dp == 1) single_rank_bytes = counted;
      EXPECT_LE(counted * dp, single_rank_bytes + 12 * buckets * (dp - 1)) << "dp " << dp;
      EXPECT_GE(counted * dp, single_rank_bytes) << "dp " << dp;
    }
  }
  EXPECT_EQ(single_rank_bytes, 12 * n);
}

// With a group of one, ZeRO-1 reduce-scatter and all-gather are copies: the shard holds
// exactly the flat gradient elements and the gather writes the master back.
TEST(GradReducer, SingleRankZero1RoundTrip) {
  const std::vector<ParamExtent> params = synthetic_params();
  const BucketPlan plan = plan_buckets(params, 163, 16, 1);
  Tensor grads = Tensor::empty({163});
  for (int64_t i = 0; i < 163; ++i) grads.data<float>()[i] = static_cast<float>(i) * 0.5f;
  GradReducer reducer(nullptr, grads, plan, /*zero1=*/true);
  reducer.start_step();
  // Blocks 0 and 1 alone complete no bucket that also holds block 2 or 3.
  reducer.block_final(0);
  reducer.block_final(1);
  const int64_t early = reducer.posted_early();
  for (const GradBucket& b : plan.buckets) {
    const bool complete =
        std::all_of(b.blocks.begin(), b.blocks.end(), [](int x) { return x < 2; });
    EXPECT_EQ(complete, b.blocks.back() < 2);
  }
  EXPECT_GT(early, 0);
  EXPECT_LT(early, static_cast<int64_t>(plan.buckets.size()));
  reducer.block_final(1);  // a repeated report changes nothing
  EXPECT_EQ(reducer.posted_early(), early);
  reducer.finish();
  const std::vector<ShardSegment> segments = shard_segments(plan, 0, params);
  for (const ShardSegment& s : segments) {
    for (int64_t i = 0; i < s.count; ++i) {
      EXPECT_EQ(reducer.shard_grads().data<float>()[s.shard_offset + i],
                grads.data<float>()[s.flat_offset + i]);
    }
  }
  Tensor values = Tensor::zeros({163});
  all_gather_weights(nullptr, plan, reducer.shard_grads(), values);
  EXPECT_EQ(std::memcmp(values.raw_data(), grads.raw_data(), grads.nbytes()), 0);
}

// The ZeRO-1 state and the reducer's shard live beside the weights and gradients they serve:
// in device memory (the CPU backend's, which host code may read only through a copy), the
// round trip runs as copies and ops, and what comes back equals the gradients.
TEST(GradReducer, Zero1BuffersFollowTheGradientsDevice) {
  const std::vector<ParamExtent> params = synthetic_params();
  const BucketPlan plan = plan_buckets(params, 163, 16, 1);
  std::vector<float> values(163);
  for (size_t i = 0; i < values.size(); ++i) values[i] = static_cast<float>(i) * 0.25f;
  const Tensor host = Tensor::from_vector(values, {163});
  const Tensor grads = host.to(Device::CPUDevice);
  const Zero1State state(plan, 0, params, DType::BF16, Device::CPUDevice);
  EXPECT_EQ(state.master().device(), Device::CPUDevice);
  EXPECT_EQ(state.exp_avg().device(), Device::CPUDevice);
  GradReducer reducer(nullptr, grads, plan, /*zero1=*/true);
  reducer.start_step();
  reducer.finish();
  EXPECT_EQ(reducer.shard_grads().device(), Device::CPUDevice);
  Tensor gathered = Tensor::zeros({163}, DType::F32, Device::CPUDevice);
  all_gather_weights(nullptr, plan, reducer.shard_grads(), gathered);
  EXPECT_EQ(gathered.to(Device::CPU).to_vector(), values);
}

}  // namespace
}  // namespace trident::parallel::dp
