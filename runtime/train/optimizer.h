#pragma once
// The one gradient and optimizer path, shared by pretraining (and SFT) and GRPO:
//
//   begin_step()           zero the gradients, arm the bucketed reductions
//   block_final(b)         gradient block b received its last contribution of the step (the
//                          step engine reports it while backward goes on): every bucket that
//                          became complete is reduced in the background
//   finish_gradients()     the last pipeline stage's embedding copy hands its gradient to stage
//                          0's rank; the rest of the buckets go out; every reduction is waited for
//   grad_norm()            the global L2 norm with every global element counted exactly once
//   update(lr, clip, t)    global-norm clipping and AdamW on fp32 master weights (each rank its
//                          ZeRO-1 shard, then the all-gather), the embedding copy refreshed
//
// Reduction groups and the norm come from the parameters' gradient sharding
// (models/deepseek_v3/parallelize/gradient_layout.h), never from layout flags: the parameters
// reduced over the same group (dp, or edp for routed experts under expert parallelism) share
// one bucketed GradReducer and, with ZeRO-1, one sharded optimizer state. A rank's copy of a
// parameter's reduced gradient counts in the norm when no other rank holds the same elements
// with a lower index: under ZeRO-1 every rank's shard is its own; otherwise only rank 0 of the
// reduction group counts, and of TP ranks that hold the same elements only TP rank 0. The
// squares are then summed over the whole job in rank order, so every rank gets the same bits.
//
// The embedding copy (pipeline parallelism with MTP, when stage 0 and the last stage are on
// different ranks): the last stage's rank holds a second copy of model.embed_tokens for the MTP
// depths. It stays out of that rank's buckets, shards, optimizer and norm: its gradient is sent
// to stage 0's rank and added there before the reduction, and after the update stage 0's rank
// sends the table back. Two ranks updating their own copy would let them drift apart by
// round-off whenever the reduction order depends on a bucket offset (a ring all-reduce).
#include <cstdint>
#include <memory>
#include <vector>

#include "models/deepseek_v3/model.h"
#include "models/deepseek_v3/parallelize/gradient_layout.h"
#include "models/deepseek_v3/parallelize/pipeline_partition.h"
#include "ops/types.h"
#include "parallel/context.h"
#include "parallel/dp/grad_reducer.h"
#include "parallel/dp/zero1_state.h"

namespace trident::train {

// Clip coefficient for global-norm clipping: min(1, max_norm / (norm + 1e-6)); 1 if max_norm ≤ 0.
double clip_coefficient(double global_norm, double max_norm);

struct OptimizerSettings {
  ops::AdamWSettings adam;
  bool zero1 = false;        // parallel.zero1
  int64_t bucket_bytes = 0;  // gradient bucket size (parallel.dp_bucket_mb when 0)
  int64_t bucket_mb = 25;    // parallel.dp_bucket_mb
  // The last stage keeps a copy of the embedding where the partition puts MTP there (false for
  // a model trained without MTP, such as the GRPO policy).
  bool embedding_copy = true;
  DType moments = DType::F32;  // train.moment_dtype: AdamW's m and v stored as f32 or bf16
};

// Counters of one step's reductions.
struct ReductionStats {
  int64_t buckets = 0;             // gradient buckets reduced
  int64_t buckets_overlapped = 0;  // of which posted while backward was still running
};

class Optimizer {
 public:
  // `partition` is the run's pipeline split (the context's pp rank is this rank's place in it).
  Optimizer(models::DeepSeekV3Model& model, const parallel::ParallelContext& context,
            const models::parallelize::PipelinePartition& partition,
            const OptimizerSettings& settings);
  Optimizer(const Optimizer&) = delete;
  Optimizer& operator=(const Optimizer&) = delete;

  void begin_step();
  void block_final(int block);
  void finish_gradients();
  double grad_norm() const;
  // AdamW step `adam_step` (1-based; its bias correction) with the gradients scaled by `clip`.
  // Returns how many of the weights this rank updated came out NaN or infinite (counted by the
  // update itself: NonFiniteGuard::check_update sums it over the job).
  [[nodiscard]] int64_t update(double lr, double clip, int64_t adam_step);

  ReductionStats reduction_stats() const;
  bool zero1() const { return settings_.zero1; }
  // Bytes of optimizer state this rank holds (moments, plus master weights under ZeRO-1).
  int64_t state_bytes() const;
  // Whether this rank holds the last stage's embedding copy (excluded from its optimizer).
  bool holds_embedding_copy() const { return copy_role_ == CopyRole::Copy; }

  // One reduction group: its parameters' bucket plan and, under ZeRO-1, this rank's shard.
  struct Group {
    parallel::MeshAxis axis = parallel::MeshAxis::Dp;
    parallel::comm::Communicator* comm = nullptr;
    std::unique_ptr<parallel::dp::GradReducer> reducer;
    std::unique_ptr<parallel::dp::Zero1State> zero1;  // null without ZeRO-1
  };
  const std::vector<Group>& groups() const { return groups_; }
  std::vector<Group>& mutable_groups() { return groups_; }
  // Without ZeRO-1: the moments aligned with the model's flat buffers (undefined under it).
  const Tensor& exp_avg() const { return exp_avg_; }
  const Tensor& exp_avg_sq() const { return exp_avg_sq_; }
  // After weights were loaded from outside (checkpoint, HF import): the ZeRO-1 masters are
  // re-read from the model.
  void reload_master_weights();

 private:
  enum class CopyRole { None, Original, Copy };
  void send_copy_gradient();
  void refresh_copy();
  double local_squares() const;

  models::DeepSeekV3Model& model_;
  const parallel::ParallelContext& context_;
  OptimizerSettings settings_;
  std::vector<Group> groups_;
  // Per parameter of the store: whether this rank's copy of its reduced gradient counts in the
  // norm (without ZeRO-1), and whether the optimizer updates it here.
  std::vector<bool> counted_;
  std::vector<bool> updated_;
  Tensor exp_avg_;
  Tensor exp_avg_sq_;
  Tensor nonfinite_;  // i64[1] on the store's device: the update's non-finite weights
  CopyRole copy_role_ = CopyRole::None;
  int copy_peer_ = -1;  // pipeline rank of the other side of the embedding copy
  int embedding_block_ = 0;
};

}  // namespace trident::train
