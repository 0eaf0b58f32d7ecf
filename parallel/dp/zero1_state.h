#pragma once
// ZeRO-1 optimizer state of one data-parallel rank: fp32 master weights and the two AdamW
// moments for this rank's shard only (bucket_plan.h says which elements those are), so the
// optimizer memory per rank is (4 + 2·b_m) bytes × shard_numel ≈ (4 + 2·b_m)·N/dp bytes instead
// of the replicated state, with b_m = 4 for fp32 moments and 2 for bf16 ones. All three are
// allocated through Tensor on the device of the weights they update (a GPU's memory in a GPU
// run), so the allocator counts them and AdamW runs where the gradients are.
//
// The update is element-wise, so running AdamW segment by segment on the shard is exactly the
// unsharded update; each segment carries its parameter's weight-decay flag.
#include <cstdint>
#include <vector>

#include "parallel/dp/bucket_plan.h"
#include "runtime/core/tensor.h"

namespace trident::parallel::dp {

class Zero1State {
 public:
  Zero1State(const BucketPlan& plan, int rank, const std::vector<ParamExtent>& params,
             DType moments = DType::F32, Device device = Device::CPU);

  // Copies this rank's elements of the flat values into the master weights (initialisation,
  // and after anything outside the optimizer changed the weights).
  void load_master(const Tensor& flat_values);
  // Untrained elements (the router bias, changed outside the optimizer): master := values,
  // so the all-gather hands back the current buffer.
  void refresh_untrained(const Tensor& flat_values);

  const std::vector<ShardSegment>& segments() const { return segments_; }
  int64_t shard_numel() const { return master_.numel(); }
  Tensor& master() { return master_; }
  Tensor& exp_avg() { return exp_avg_; }
  Tensor& exp_avg_sq() { return exp_avg_sq_; }
  const Tensor& master() const { return master_; }
  const Tensor& exp_avg() const { return exp_avg_; }
  const Tensor& exp_avg_sq() const { return exp_avg_sq_; }
  int64_t bytes() const;  // master + moments
  bool master_loaded() const { return master_loaded_; }

 private:
  // The segment's elements of the model's flat values into the master shard.
  void copy_segment(const ShardSegment& s, const Tensor& flat_values);

  std::vector<ShardSegment> segments_;
  Tensor master_;
  Tensor exp_avg_;
  Tensor exp_avg_sq_;
  bool master_loaded_ = false;
};

}  // namespace trident::parallel::dp
