#include "runtime/train/optimizer_moments.h"

#include <algorithm>
#include <vector>

namespace trident::train {

namespace {

void add_shard(parallel::dp::Zero1State* state, std::vector<io::MomentRange>& ranges) {
  if (state == nullptr) return;
  float* m = state->exp_avg().data<float>();
  float* v = state->exp_avg_sq().data<float>();
  for (const parallel::dp::ShardSegment& s : state->segments()) {
    if (s.count <= 0) continue;
    ranges.push_back(
        {m + s.shard_offset, v + s.shard_offset, s.flat_offset, s.flat_offset + s.count});
  }
}

}  // namespace

io::MomentsView optimizer_moments(Optimizer& optimizer, const models::ParameterStore& store) {
  if (!optimizer.zero1()) {
    return io::MomentsView::whole(optimizer.exp_avg().data<float>(),
                                  optimizer.exp_avg_sq().data<float>(), store.numel());
  }
  std::vector<io::MomentRange> ranges;
  for (Optimizer::Group& group : optimizer.mutable_groups()) add_shard(group.zero1.get(), ranges);
  return io::MomentsView::of_ranges(std::move(ranges));
}

// Without ZeRO-1 the last stage's rank holds unused zeros for the embedding copy, which must
// not be written over stage 0's moments; under ZeRO-1 it holds none.
io::MomentsView moments_to_save(Optimizer& optimizer, const models::ParameterStore& store) {
  io::MomentsView moments = optimizer_moments(optimizer, store);
  const char* const embedding = "model.embed_tokens.weight";
  if (!optimizer.holds_embedding_copy() || !store.has(embedding)) return moments;
  const models::Parameter& copy = store.get(embedding);
  const int64_t lo = copy.offset;
  const int64_t hi = copy.offset + copy.value.numel();
  std::vector<io::MomentRange> kept;
  for (const io::MomentRange& r : moments.ranges()) {
    if (r.flat_begin < lo) {
      const int64_t end = std::min(r.flat_end, lo);
      kept.push_back({r.exp_avg, r.exp_avg_sq, r.flat_begin, end});
    }
    if (r.flat_end > hi) {
      const int64_t begin = std::max(r.flat_begin, hi);
      kept.push_back({r.exp_avg + (begin - r.flat_begin), r.exp_avg_sq + (begin - r.flat_begin),
                      begin, r.flat_end});
    }
  }
  return io::MomentsView::of_ranges(std::move(kept));
}

}  // namespace trident::train
