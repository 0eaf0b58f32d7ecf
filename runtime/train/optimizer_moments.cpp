#include "runtime/train/optimizer_moments.h"

#include <algorithm>
#include <vector>

namespace trident::train {

namespace {

void add_shard(parallel::dp::Zero1State* state, std::vector<io::MomentRange>& ranges) {
  if (state == nullptr) return;
  const Tensor& m = state->exp_avg();
  const Tensor& v = state->exp_avg_sq();
  for (const parallel::dp::ShardSegment& s : state->segments()) {
    if (s.count <= 0) continue;
    const int64_t end = s.shard_offset + s.count;
    ranges.push_back({m.narrow(s.shard_offset, end).raw_data(),
                      v.narrow(s.shard_offset, end).raw_data(), s.flat_offset,
                      s.flat_offset + s.count, m.dtype()});
  }
}

}  // namespace

io::MomentsView optimizer_moments(Optimizer& optimizer, const models::ParameterStore& store) {
  if (!optimizer.zero1()) {
    return io::MomentsView::whole(optimizer.exp_avg(), optimizer.exp_avg_sq());
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
    if (r.flat_begin < lo) kept.push_back(r.part(r.flat_begin, std::min(r.flat_end, lo)));
    if (r.flat_end > hi) kept.push_back(r.part(std::max(r.flat_begin, hi), r.flat_end));
  }
  return io::MomentsView::of_ranges(std::move(kept));
}

}  // namespace trident::train
