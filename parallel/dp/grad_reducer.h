#pragma once
// Data-parallel gradient reduction in buckets, launched while backward is still running.
//
// The step engine calls block_final(b) once gradient block b has received its last
// contribution of the step; every bucket whose blocks are all final by then is queued at once on
// the dp.comm stream (runtime/core/stream.h), in plan order, after an event of the compute
// stream, and backward goes on. The stream posts each bucket's collective (the communicator's
// progress thread moves it). finish() queues whatever is left and a wait for every reduction,
// then synchronizes the stream: only then may the host read the reduced gradients. Every member
// of the group sees the same blocks finish in the same order (they run the same schedule), so
// they post the same collectives in the same order.
//
// The reduction is a SUM: every loss is already divided by the global batch's counts, so the
// ranks' gradients add up to the full-batch gradient.
//   plain:  all_reduce of each bucket in place in the flat gradient buffer.
//   ZeRO-1: reduce_scatter of each bucket; this rank's block lands in shard_grads() (the flat
//           buffer is then only partly meaningful and must not be read).
// Buckets whose size is not a multiple of dp (at most one) go through a zero-padded copy.
// A null communicator is a group of one (the operations become local copies).
#include <cstdint>
#include <vector>

#include "parallel/comm/communicator.h"
#include "parallel/dp/bucket_plan.h"
#include "runtime/core/stream.h"

namespace trident::parallel::dp {

class GradReducer {
 public:
  // `flat_grads` is the model's flat fp32 gradient buffer (kept alive by the view).
  GradReducer(comm::Communicator* comm, const Tensor& flat_grads, BucketPlan plan, bool zero1);
  // Waits until none of its work is queued any more (the stream's items refer to it).
  ~GradReducer();
  GradReducer(const GradReducer&) = delete;
  GradReducer& operator=(const GradReducer&) = delete;

  // Begins a step: nothing is posted yet.
  void start_step();
  // Gradient block `block` is final for this step: posts every bucket that became ready.
  void block_final(int block);
  // Posts the remaining buckets and waits for all of them.
  void finish();

  const BucketPlan& plan() const { return plan_; }
  bool zero1() const { return zero1_; }
  // ZeRO-1: this rank's reduced gradient blocks, [plan().shard_numel].
  const Tensor& shard_grads() const { return shard_grads_; }
  // Buckets posted before finish() in the current step (overlapped with backward).
  int64_t posted_early() const { return posted_early_; }

 private:
  // Queues bucket `index` on the stream; post() runs there.
  void queue(size_t index);
  void post(size_t index);

  Stream& stream_;
  comm::Communicator* comm_;
  Tensor flat_grads_;
  BucketPlan plan_;
  bool zero1_;
  Tensor shard_grads_;
  std::vector<Tensor> staging_;  // per bucket: the padded copy, or undefined
  std::vector<comm::WorkHandle> pending_;  // touched on the stream only
  std::vector<int> final_blocks_;  // sorted: the blocks final so far this step
  std::vector<bool> posted_;       // per bucket, this step
  int64_t posted_early_ = 0;
};

// ZeRO-1, after the optimizer updated this rank's shard of the weights: every rank's blocks
// are gathered into the flat value buffer (rank r's block of bucket b comes from its shard).
void all_gather_weights(comm::Communicator* comm, const BucketPlan& plan,
                        const Tensor& shard_values, const Tensor& flat_values);

}  // namespace trident::parallel::dp
