#pragma once
// The one step engine. Every layout runs its micro-batches as a pipeline schedule through one
// executor (parallel/pp/executor.h); pp = 1 is a schedule of one stage, as Megatron-Core's
// forward_backward_no_pipelining is the one-stage case of its pipelined schedules. Training
// passes (pretraining, SFT, GRPO policy updates) run parallel.schedule; forward-only passes
// (held-out evaluation, GRPO's scoring of its rollouts) run the same schedule's forwards.
//
// What a stage computes is the ModelStageCompute's business and what the last stage's loss is
// its objective's; the engine owns the schedules (one per micro-batch count, built once) and
// tells the optimizer about each gradient block as soon as its last contribution has run, so
// the data-parallel reduction of that block overlaps the rest of backward on every layout.
#include <functional>
#include <map>
#include <memory>
#include <utility>

#include "models/deepseek_v3/parallelize/pipeline_partition.h"
#include "parallel/context.h"
#include "parallel/pp/executor.h"
#include "runtime/config/trident.pb.h"
#include "runtime/train/model_stage_compute.h"

namespace trident::train {

// Told each gradient block (models/deepseek_v3/parallelize/gradient_layout.h) once its last
// contribution of the pass has run: the optimizer's Optimizer::block_final.
using GradientSink = std::function<void(int block)>;

class StepEngine {
 public:
  StepEngine(const config::ParallelConfig& parallel, const parallel::ParallelContext& context,
             const models::parallelize::PipelinePartition& partition);

  // Whether the schedule runs this many micro-batches per step (the rules that
  // runtime/config/validate_layout.cpp states for train.global_batch).
  bool accepts(int microbatches) const;
  // The smallest count ≥ `wanted` (and ≥ 1) the schedule runs: a pass whose micro-batch count
  // is not its own choice (GRPO's prompt groups) is padded to it.
  int microbatches_for(int wanted) const;

  // One training pass over the micro-batches `compute` was given; gradients accumulate into the
  // model and `sink` (may be empty) hears of every gradient block once it is final.
  parallel::pp::ExecutorStats train(ModelStageCompute& compute, int microbatches,
                                    const GradientSink& sink);
  // One forward-only pass (no gradients).
  parallel::pp::ExecutorStats forward(ModelStageCompute& compute, int microbatches);

  const std::string& schedule_name() const { return name_; }

 private:
  parallel::pp::PipelineExecutor& executor(int microbatches, bool forward_only);

  std::string name_;
  int virtual_stages_ = 1;
  std::shared_ptr<parallel::comm::Communicator> pp_;
  int pp_size_ = 1;
  std::map<std::pair<int, bool>, std::unique_ptr<parallel::pp::PipelineExecutor>> executors_;
};

}  // namespace trident::train
