#include "parallel/dp/zero1_state.h"

#include <cstring>

#include "runtime/core/error.h"

namespace trident::parallel::dp {

Zero1State::Zero1State(const BucketPlan& plan, int rank, const std::vector<ParamExtent>& params,
                       DType moments)
    : segments_(shard_segments(plan, rank, params)),
      master_(Tensor::zeros({plan.shard_numel})),
      exp_avg_(Tensor::zeros({plan.shard_numel}, moments)),
      exp_avg_sq_(Tensor::zeros({plan.shard_numel}, moments)) {}

void Zero1State::load_master(const Tensor& flat_values) {
  const float* values = flat_values.data<float>();
  float* master = master_.data<float>();
  for (const ShardSegment& s : segments_) {
    std::memcpy(master + s.shard_offset, values + s.flat_offset,
                static_cast<size_t>(s.count) * sizeof(float));
  }
  master_loaded_ = true;
}

void Zero1State::refresh_untrained(const Tensor& flat_values) {
  const float* values = flat_values.data<float>();
  float* master = master_.data<float>();
  for (const ShardSegment& s : segments_) {
    if (s.trained) continue;
    std::memcpy(master + s.shard_offset, values + s.flat_offset,
                static_cast<size_t>(s.count) * sizeof(float));
  }
}

int64_t Zero1State::bytes() const {
  return static_cast<int64_t>(master_.nbytes() + exp_avg_.nbytes() + exp_avg_sq_.nbytes());
}

}  // namespace trident::parallel::dp
