#include "parallel/dp/bucket_plan.h"

#include <algorithm>

#include "runtime/core/error.h"

namespace trident::parallel::dp {

namespace {
int64_t round_up(int64_t value, int64_t multiple) {
  return (value + multiple - 1) / multiple * multiple;
}

std::vector<ParamExtent> sorted_by_offset(std::vector<ParamExtent> params) {
  std::sort(params.begin(), params.end(),
            [](const ParamExtent& a, const ParamExtent& b) { return a.offset < b.offset; });
  return params;
}
}  // namespace

BucketPlan plan_buckets(const std::vector<ParamExtent>& params, int64_t flat_numel,
                        int64_t bucket_elements, int dp_size) {
  return plan_buckets(params, flat_numel, bucket_elements, dp_size, {FlatRange{0, flat_numel}});
}

std::vector<FlatRange> member_ranges(const std::vector<ParamExtent>& params,
                                     const std::vector<bool>& member) {
  TRIDENT_CHECK(params.size() == member.size(), "member_ranges: one flag per parameter");
  std::vector<size_t> order(params.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::sort(order.begin(), order.end(),
            [&](size_t a, size_t b) { return params[a].offset < params[b].offset; });
  std::vector<FlatRange> ranges;
  bool open = false;
  for (const size_t i : order) {
    if (!member[i]) {
      open = false;
      continue;
    }
    const int64_t end = params[i].offset + params[i].numel;
    if (open) {
      ranges.back().end = end;
    } else {
      ranges.push_back(FlatRange{params[i].offset, end});
      open = true;
    }
  }
  return ranges;
}

BucketPlan plan_buckets(const std::vector<ParamExtent>& params, int64_t flat_numel,
                        int64_t bucket_elements, int dp_size,
                        const std::vector<FlatRange>& ranges) {
  TRIDENT_CHECK(dp_size >= 1 && bucket_elements >= 1 && flat_numel >= 0, "plan_buckets: bad sizes");
  BucketPlan plan;
  plan.flat_numel = flat_numel;
  plan.dp_size = dp_size;
  const int64_t target = round_up(bucket_elements, dp_size);
  const std::vector<ParamExtent> ordered = sorted_by_offset(params);
  // Ranges from the end of the buffer backwards, each cut from its end backwards.
  std::vector<FlatRange> backwards = ranges;
  std::sort(backwards.begin(), backwards.end(),
            [](const FlatRange& a, const FlatRange& b) { return a.begin > b.begin; });
  for (const FlatRange& range : backwards) {
    TRIDENT_CHECK(range.begin >= 0 && range.end <= flat_numel && range.begin <= range.end,
                  "plan_buckets: range outside the buffer");
    for (int64_t end = range.end; end > range.begin;) {
      const int64_t begin = std::max<int64_t>(range.begin, end - target);
      GradBucket bucket;
      bucket.begin = begin;
      bucket.end = end;
      bucket.padded = round_up(end - begin, dp_size);
      bucket.block = bucket.padded / dp_size;
      for (const ParamExtent& p : ordered) {
        if (p.offset < end && p.offset + p.numel > begin) bucket.blocks.push_back(p.block);
      }
      std::sort(bucket.blocks.begin(), bucket.blocks.end());
      bucket.blocks.erase(std::unique(bucket.blocks.begin(), bucket.blocks.end()),
                          bucket.blocks.end());
      plan.buckets.push_back(bucket);
      end = begin;
    }
  }
  for (GradBucket& bucket : plan.buckets) {
    bucket.shard_offset = plan.shard_numel;
    plan.shard_numel += bucket.block;
  }
  return plan;
}

std::vector<ShardSegment> shard_segments(const BucketPlan& plan, int rank,
                                         const std::vector<ParamExtent>& params) {
  TRIDENT_CHECK(rank >= 0 && rank < plan.dp_size, "shard_segments: rank ", rank, " of ",
                plan.dp_size);
  const std::vector<ParamExtent> ordered = sorted_by_offset(params);
  std::vector<ShardSegment> segments;
  for (const GradBucket& bucket : plan.buckets) {
    const int64_t block = bucket.block;
    const int64_t lo = bucket.begin + rank * block;
    const int64_t hi = std::min(bucket.end, lo + block);
    // Walk [lo, hi) parameter by parameter; gaps between parameters are untrained.
    int64_t at = lo;
    while (at < hi) {
      ShardSegment segment;
      segment.flat_offset = at;
      segment.shard_offset = bucket.shard_offset + (at - lo);
      const auto holder = std::find_if(ordered.begin(), ordered.end(), [&](const ParamExtent& p) {
        return p.offset <= at && at < p.offset + p.numel;
      });
      int64_t stop = hi;
      if (holder != ordered.end()) {
        stop = std::min(hi, holder->offset + holder->numel);
        segment.trained = holder->trained;
        segment.decay = holder->decay;
        segment.tp_replicated = holder->tp_replicated;
      } else {
        for (const ParamExtent& p : ordered) {
          if (p.offset > at) {
            stop = std::min(stop, p.offset);
            break;
          }
        }
      }
      segment.count = stop - at;
      segments.push_back(segment);
      at = stop;
    }
  }
  return segments;
}

}  // namespace trident::parallel::dp
