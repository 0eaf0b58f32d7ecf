#pragma once
// The AdamW moments an Optimizer holds, as the views a checkpoint writes and reads
// (runtime/io/checkpoint.h): the whole flat buffer, or its ZeRO-1 shards over dp and, with
// expert parallelism, over edp. Pretraining's and GRPO's checkpoints both use them.
#include <utility>
#include <vector>

#include "models/deepseek_v3/parameters.h"
#include "runtime/core/tensor.h"
#include "runtime/io/checkpoint.h"
#include "runtime/train/optimizer.h"

namespace trident::train {

// The moments as host memory a checkpoint can address: the optimizer's own buffers when they
// live on the host, else host copies of them (made when the view is made; a load fills the copies
// and write_back() hands them to the optimizer).
class HostMoments {
 public:
  const io::MomentsView& view() const { return view_; }
  // After a load into view(): the host copies into the optimizer's buffers (nothing to do for
  // buffers on the host).
  void write_back();

 private:
  friend HostMoments optimizer_moments(Optimizer&, const models::ParameterStore&);
  friend HostMoments moments_to_save(Optimizer&, const models::ParameterStore&);
  // `moment` itself on the host, else a host copy of it that write_back() returns.
  Tensor on_host(const Tensor& moment);

  io::MomentsView view_;
  std::vector<std::pair<Tensor, Tensor>> copies_;  // (the optimizer's buffer, its host copy)
};

// The moments this rank holds, aligned with `store` (the optimizer's model's parameters): one
// range without ZeRO-1, one range per shard segment under it. Loading fills exactly these.
HostMoments optimizer_moments(Optimizer& optimizer, const models::ParameterStore& store);

// The moments this rank writes: optimizer_moments less the last pipeline stage's copy of the
// embedding, whose moments live on stage 0's rank (optimizer.h); loading fills both copies'
// values.
HostMoments moments_to_save(Optimizer& optimizer, const models::ParameterStore& store);

}  // namespace trident::train
