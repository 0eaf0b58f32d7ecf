#pragma once
// How the flat gradient buffer is cut into buckets for the data-parallel reduction, and which
// part of every bucket each rank owns under ZeRO-1. Pure arithmetic (no MPI), identical on
// every rank, so every rank issues the same collectives in the same order.
//
// Buckets are contiguous element ranges of the flat buffer, cut from its end backwards
// (parameters that backward finishes first sit at the end: MTP, head, last layers), each a
// multiple of the data-parallel size except possibly the one at the start of the buffer. Every
// parameter belongs to a gradient block (a unit of backward whose weight gradients complete
// together, e.g. one decoder layer); a bucket is ready once every block overlapping it is final
// for the step, and ready buckets are launched in plan order.
//
// ZeRO-1: a bucket of n elements is padded to a multiple of dp, P = round_up(n, dp), and rank r
// owns elements [r·P/dp, (r+1)·P/dp) of it (a reduce-scatter delivers exactly that block). A
// rank's shard is its block of every bucket, concatenated in launch order.
#include <cstdint>
#include <vector>

namespace trident::parallel::dp {

// One parameter's place in the flat buffers and what the optimizer does with it.
struct ParamExtent {
  int64_t offset = 0;  // first element in the flat buffers
  int64_t numel = 0;
  int block = 0;            // the gradient block whose backward completes it
  bool trained = true;      // false: a buffer that gradients never reach (router bias)
  bool decay = false;       // AdamW weight decay applies
  // Every TP rank holds the whole parameter (so the global gradient norm counts it on one TP
  // rank only); false for TP-split parameters, whose slices are disjoint.
  bool tp_replicated = true;
};

struct GradBucket {
  int64_t begin = 0;  // flat elements [begin, end)
  int64_t end = 0;
  int64_t padded = 0;        // round_up(end − begin, dp)
  std::vector<int> blocks;   // the gradient blocks of its parameters (sorted, distinct)
  int64_t block = 0;         // padded / dp: elements each rank owns
  int64_t shard_offset = 0;  // where the block of each rank starts in that rank's shard
  int64_t size() const { return end - begin; }
  bool needs_padding() const { return padded != size(); }
};

struct BucketPlan {
  std::vector<GradBucket> buckets;  // in launch order
  int64_t flat_numel = 0;
  int dp_size = 1;
  int64_t shard_numel = 0;  // Σ block: elements of every rank's ZeRO-1 shard
};

// `bucket_elements` ≥ 1 is the target bucket size (rounded up to a multiple of dp_size).
BucketPlan plan_buckets(const std::vector<ParamExtent>& params, int64_t flat_numel,
                        int64_t bucket_elements, int dp_size);

// A half-open range of flat elements.
struct FlatRange {
  int64_t begin = 0;
  int64_t end = 0;
};

// The parameters with member[i] set, as maximal flat ranges that hold no other parameter (runs
// of members consecutive in offset order, the alignment gaps between them included).
std::vector<FlatRange> member_ranges(const std::vector<ParamExtent>& params,
                                     const std::vector<bool>& member);

// The same plan restricted to `ranges` (buckets never cross a range's ends; elements outside
// every range are left alone): for a flat buffer whose parameters are reduced over different
// groups (dense ones over DP, routed experts over EDP), one plan per group.
BucketPlan plan_buckets(const std::vector<ParamExtent>& params, int64_t flat_numel,
                        int64_t bucket_elements, int dp_size, const std::vector<FlatRange>& ranges);

// A run of elements of this rank's shard that belongs to one parameter.
struct ShardSegment {
  int64_t flat_offset = 0;   // first element in the flat buffers
  int64_t shard_offset = 0;  // first element in the shard
  int64_t count = 0;
  bool trained = false;
  bool decay = false;
  bool tp_replicated = true;
};

// The real (unpadded) elements rank `rank` owns, split at parameter boundaries, in shard
// order. Elements not covered by any parameter count as untrained.
std::vector<ShardSegment> shard_segments(const BucketPlan& plan, int rank,
                                         const std::vector<ParamExtent>& params);

}  // namespace trident::parallel::dp
