#include "runtime/train/optimizer_moments.h"

#include <algorithm>
#include <vector>

namespace trident::train {

Tensor HostMoments::on_host(const Tensor& moment) {
  if (moment.device() == Device::CPU) return moment;
  Tensor copy = moment.to(Device::CPU);
  copies_.emplace_back(moment, copy);
  return copy;
}

void HostMoments::write_back() {
  for (auto& [buffer, copy] : copies_) buffer.copy_from(copy);
}

HostMoments optimizer_moments(Optimizer& optimizer, const models::ParameterStore& /*store*/) {
  HostMoments out;
  if (!optimizer.zero1()) {
    out.view_ = io::MomentsView::whole(out.on_host(optimizer.exp_avg()),
                                       out.on_host(optimizer.exp_avg_sq()));
    return out;
  }
  std::vector<io::MomentRange> ranges;
  for (Optimizer::Group& group : optimizer.mutable_groups()) {
    const parallel::dp::Zero1State* state = group.zero1.get();
    if (state == nullptr) continue;
    const Tensor m = out.on_host(state->exp_avg());
    const Tensor v = out.on_host(state->exp_avg_sq());
    for (const parallel::dp::ShardSegment& s : state->segments()) {
      if (s.count <= 0) continue;
      const int64_t end = s.shard_offset + s.count;
      ranges.push_back({m.narrow(s.shard_offset, end).raw_data(),
                        v.narrow(s.shard_offset, end).raw_data(), s.flat_offset,
                        s.flat_offset + s.count, m.dtype()});
    }
  }
  out.view_ = io::MomentsView::of_ranges(std::move(ranges));
  return out;
}

// Without ZeRO-1 the last stage's rank holds unused zeros for the embedding copy, which must
// not be written over stage 0's moments; under ZeRO-1 it holds none.
HostMoments moments_to_save(Optimizer& optimizer, const models::ParameterStore& store) {
  HostMoments moments = optimizer_moments(optimizer, store);
  const char* const embedding = "model.embed_tokens.weight";
  if (!optimizer.holds_embedding_copy() || !store.has(embedding)) return moments;
  const models::Parameter& copy = store.get(embedding);
  const int64_t lo = copy.offset;
  const int64_t hi = copy.offset + copy.value.numel();
  std::vector<io::MomentRange> kept;
  for (const io::MomentRange& r : moments.view_.ranges()) {
    if (r.flat_begin < lo) kept.push_back(r.part(r.flat_begin, std::min(r.flat_end, lo)));
    if (r.flat_end > hi) kept.push_back(r.part(std::max(r.flat_begin, hi), r.flat_end));
  }
  moments.view_ = io::MomentsView::of_ranges(std::move(kept));
  return moments;
}

}  // namespace trident::train
