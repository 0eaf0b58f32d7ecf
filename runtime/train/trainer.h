#pragma once
// The pretraining (and SFT) step: micro-batches → gradients of the whole global batch →
// global-norm clipping → AdamW → aux-loss-free router-bias update → metrics.
//
// Every loss is normalised by the *global* batch's target counts before backward, so the
// gradient a step applies does not depend on how the batch is cut into micro-batches or
// across data-parallel ranks.
//
// Data parallelism (docs/data-parallel.md): each of the dp ranks takes its contiguous
// global_batch / dp rows, in micro-batches of train.micro_batch; the target counts are summed
// over the ranks before any backward; the gradients are summed over the ranks in buckets
// posted while the last micro-batch's backward is still running; with parallel.zero1 each
// rank keeps master weights and AdamW moments for its shard only and the updated weights are
// all-gathered. Every rank ends the step with the same weights and the same metrics.
//
// Tensor parallelism (docs/tensor-parallel.md, docs/data-parallel.md): the tp ranks of one
// data-parallel index form a TP group that sees the same rows; each holds its slices of the
// split parameters. Gradients are reduced (and ZeRO-1-sharded) over the dp group only: the
// flat buffer of a TP rank holds that rank's slices, and the dp group's members all have the
// same TP rank, hence the same buffer layout. The global gradient norm counts every global
// element once: split slices summed over TP, replicated parameters on TP rank 0 only.
//
// Expert parallelism (docs/expert-parallel.md): the ep ranks of the MoE refold hold different
// routed experts and see different rows (with tp > 1, different TP shares of the rows). The
// dense gradients are reduced over dp as above; the routed experts' gradients are already
// complete over the EP group's tokens and are reduced over the EDP group only (a second bucket
// plan over the experts' flat ranges, with its own ZeRO-1 shard over EDP).
#include <cstdint>
#include <memory>
#include <vector>

#include "models/deepseek_v3/model.h"
#include "parallel/comm/communicator.h"
#include "parallel/dp/grad_reducer.h"
#include "parallel/dp/zero1_state.h"
#include "parallel/pp/executor.h"
#include "runtime/config/trident.pb.h"
#include "runtime/io/batch_sampler.h"
#include "runtime/train/lr_schedule.h"
#include "runtime/train/optimizer.h"
#include "runtime/train/pipeline_partition.h"
#include "runtime/train/pipeline_stage.h"

namespace trident::train {

struct StepMetrics {
  int64_t step = 0;
  double loss = 0.0;  // lm + λ·mtp + α·balance
  double lm_loss = 0.0;
  double mtp_loss = 0.0;
  double balance_loss = 0.0;
  double grad_norm = 0.0;  // before clipping
  double lr = 0.0;
  int64_t tokens = 0;         // model input tokens processed this step
  int64_t target_tokens = 0;  // counted LM targets
  double step_seconds = 0.0;
  double tokens_per_second = 0.0;
  // Load balance over the step's global batch: max over MoE layers of max(load) / mean(load).
  double expert_load_max_over_mean = 0.0;
  std::vector<double> layer_load_max_over_mean;  // per MoE layer (main layers, then MTP)
  int64_t grad_buckets = 0;                      // data-parallel gradient buckets
  int64_t grad_buckets_overlapped = 0;           // of which posted while backward was still running
};

struct TrainerOptions {
  // The data-parallel group (the mesh's dp communicator); null: one rank, no communication.
  // Its size must equal parallel.dp.
  std::shared_ptr<parallel::Communicator> dp;
  // The tensor-parallel group (the mesh's tp communicator); null: tp 1. Its size must equal
  // parallel.tp.
  std::shared_ptr<parallel::Communicator> tp;
  // Expert parallelism: the EP group (size parallel.ep) and the expert-data-parallel group
  // (dp · tp / ep ranks holding the same experts); both null: ep 1.
  std::shared_ptr<parallel::Communicator> ep;
  std::shared_ptr<parallel::Communicator> edp;
  // The pipeline group (the mesh's pp communicator, size parallel.pp); null: pp 1. The step
  // then runs parallel.schedule over the stages (runtime/train/pipeline_step.cpp).
  std::shared_ptr<parallel::Communicator> pp;
  // Gradient bucket size in bytes; 0 takes parallel.dp_bucket_mb.
  int64_t bucket_bytes = 0;
};

struct EvalMetrics {
  double lm_loss = 0.0;  // mean CE per counted target on the evaluation batches
  int64_t targets = 0;
};

class Trainer {
 public:
  // `sampler` yields the training rows; `eval_sampler` (optional) the held-out rows.
  Trainer(const config::TridentConfig& config, std::unique_ptr<io::BatchSampler> sampler,
          std::unique_ptr<io::BatchSampler> eval_sampler = nullptr, TrainerOptions options = {});

  // Runs global step `step_index() + 1` and returns its metrics.
  StepMetrics step();
  // Mean LM loss over `batches` global evaluation batches (forward only; with data
  // parallelism each rank evaluates its rows and the sums are combined; with pipeline
  // parallelism the activations flow over the stages and the last stage sums the loss).
  EvalMetrics evaluate(int64_t batches) const;

  int64_t step_index() const { return step_; }
  models::DeepSeekV3Model& model() { return *model_; }
  const models::DeepSeekV3Model& model() const { return *model_; }
  const config::TridentConfig& config() const { return config_; }
  const LrSchedule& schedule() const { return schedule_; }

  int dp_size() const { return dp_size_; }
  int dp_rank() const { return dp_rank_; }
  int tp_size() const { return tp_size_; }
  int tp_rank() const { return tp_rank_; }
  int ep_size() const { return ep_size_; }
  int pp_size() const { return pp_ ? pp_->size() : 1; }
  int pp_rank() const { return pp_ ? pp_->rank() : 0; }
  // The stage split (null without pipeline parallelism).
  const PipelinePartition* pipeline_partition() const { return partition_.get(); }
  // The routed experts' bucket plan over EDP (null without expert parallelism).
  const parallel::dp::BucketPlan* expert_bucket_plan() const {
    return expert_reducer_ ? &expert_reducer_->plan() : nullptr;
  }
  bool zero1() const { return zero1_ != nullptr; }
  const parallel::dp::BucketPlan& bucket_plan() const { return reducer_->plan(); }

  // fp32 first and second moments, aligned with model().params().flat_values() (undefined
  // under ZeRO-1: see zero1_state()).
  const Tensor& exp_avg() const { return exp_avg_; }
  const Tensor& exp_avg_sq() const { return exp_avg_sq_; }
  // ZeRO-1 only: this rank's master weights and moments.
  const parallel::dp::Zero1State* zero1_state() const { return zero1_.get(); }
  // Bytes of optimizer state this rank holds (moments, plus master weights under ZeRO-1).
  int64_t optimizer_state_bytes() const;

  // Checkpoint restore (trainer_checkpoint.h): the step counter (the data position and the LR
  // schedule follow it) and the ZeRO-1 states (dense over dp; routed experts over edp, null
  // without expert parallelism or ZeRO-1).
  void set_step(int64_t step) { step_ = step; }
  parallel::dp::Zero1State* mutable_zero1_state() { return zero1_.get(); }
  parallel::dp::Zero1State* mutable_expert_zero1_state() { return expert_zero1_.get(); }

 private:
  // Sums this rank's expert loads over `groups` (null entries skipped) into the global batch's
  // loads, records their balance in `metrics` and applies the router-bias update with them.
  void update_router_bias_from(std::vector<models::ExpertLoad> loads,
                               const std::vector<parallel::Communicator*>& groups,
                               StepMetrics& metrics);
  double global_grad_norm() const;
  void apply_optimizer(double lr, double clip_scale);
  void apply_zero1_optimizer(double lr, double clip_scale, parallel::dp::Zero1State& state,
                             const parallel::dp::GradReducer& reducer,
                             parallel::Communicator* comm);
  double shard_squares(const parallel::dp::Zero1State& state,
                       const parallel::dp::GradReducer& reducer) const;
  io::RowRange rows_of(int64_t micro) const;
  int64_t micro_batches_per_rank() const;
  // Pipeline parallelism (pipeline_step.cpp).
  void setup_pipeline();
  StepMetrics pipeline_step();
  // The last stage's embedding copy (pipeline_step.cpp): its gradient goes to stage 0's rank
  // before the dp reduction, and stage 0's updated embedding comes back after the optimizer.
  void send_embedding_copy_grad();
  void refresh_embedding_copy();
  double pipeline_grad_norm() const;
  // Held-out evaluation over the stages, forward only (pipeline_eval.cpp).
  EvalMetrics pipeline_evaluate(int64_t batches) const;

  config::TridentConfig config_;
  // The groups outlive the model, which keeps a raw pointer to the TP communicator.
  std::shared_ptr<parallel::Communicator> dp_;
  std::shared_ptr<parallel::Communicator> tp_;
  std::shared_ptr<parallel::Communicator> ep_;
  std::shared_ptr<parallel::Communicator> edp_;
  std::shared_ptr<parallel::Communicator> pp_;
  std::unique_ptr<PipelinePartition> partition_;  // before model_: it picks what is allocated
  std::unique_ptr<models::DeepSeekV3Model> model_;
  std::unique_ptr<io::BatchSampler> sampler_;
  std::unique_ptr<io::BatchSampler> eval_sampler_;
  LrSchedule schedule_;
  AdamWSettings adam_;
  int dp_size_ = 1;
  int dp_rank_ = 0;
  int tp_size_ = 1;
  int tp_rank_ = 0;
  int ep_size_ = 1;
  // This rank holds the last stage's copy of the embedding, which follows stage 0's and is
  // left out of this rank's gradient reduction and optimizer (pipeline_step.cpp).
  bool embedding_copy_ = false;
  std::unique_ptr<parallel::dp::GradReducer> reducer_;
  std::unique_ptr<parallel::dp::Zero1State> zero1_;
  // Expert parallelism: the routed experts' reduction over EDP (reducer_ and zero1_ then
  // cover the dense parameters only).
  std::unique_ptr<parallel::dp::GradReducer> expert_reducer_;
  std::unique_ptr<parallel::dp::Zero1State> expert_zero1_;
  Tensor exp_avg_;
  Tensor exp_avg_sq_;
  int64_t step_ = 0;
  std::unique_ptr<pp::PipelineExecutor> executor_;
  std::unique_ptr<ModelStageCompute> stage_compute_;
};

// Load balance of one layer's token counts: max / mean (1 = perfectly even; 0 if no tokens).
double load_max_over_mean(const std::vector<int64_t>& tokens_per_expert);

}  // namespace trident::train
