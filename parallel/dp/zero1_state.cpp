#include "parallel/dp/zero1_state.h"

#include "runtime/core/error.h"

namespace trident::parallel::dp {

Zero1State::Zero1State(const BucketPlan& plan, int rank, const std::vector<ParamExtent>& params,
                       DType moments, Device device)
    : segments_(shard_segments(plan, rank, params)),
      master_(Tensor::zeros({plan.shard_numel}, DType::F32, device)),
      exp_avg_(Tensor::zeros({plan.shard_numel}, moments, device)),
      exp_avg_sq_(Tensor::zeros({plan.shard_numel}, moments, device)) {}

void Zero1State::load_master(const Tensor& flat_values) {
  for (const ShardSegment& s : segments_) copy_segment(s, flat_values);
  master_loaded_ = true;
}

void Zero1State::refresh_untrained(const Tensor& flat_values) {
  for (const ShardSegment& s : segments_) {
    if (!s.trained) copy_segment(s, flat_values);
  }
}

void Zero1State::copy_segment(const ShardSegment& s, const Tensor& flat_values) {
  master_.narrow(s.shard_offset, s.shard_offset + s.count)
      .copy_from(flat_values.narrow(s.flat_offset, s.flat_offset + s.count));
}

int64_t Zero1State::bytes() const {
  return static_cast<int64_t>(master_.nbytes() + exp_avg_.nbytes() + exp_avg_sq_.nbytes());
}

}  // namespace trident::parallel::dp
