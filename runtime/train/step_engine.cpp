#include "runtime/train/step_engine.h"

#include <algorithm>

#include "parallel/pp/schedule.h"
#include "runtime/core/error.h"

namespace trident::train {

namespace {
// The stage compute as the executor sees it, with every final gradient block handed to the
// sink.
class ReportingCompute final : public parallel::pp::StageCompute {
 public:
  ReportingCompute(ModelStageCompute& inner, const GradientSink& sink)
      : inner_(inner), sink_(sink) {
    inner_.set_block_listener([this](int block) { block_written(block); });
  }
  ~ReportingCompute() override { inner_.set_block_listener(nullptr); }
  std::vector<int64_t> activation_shape(int microbatch, int stage) const override {
    return inner_.activation_shape(microbatch, stage);
  }
  Device activation_device() const override { return inner_.activation_device(); }
  Tensor forward(int microbatch, int stage, const Tensor& input) override {
    return inner_.forward(microbatch, stage, input);
  }
  Tensor backward_input(int microbatch, int stage, const Tensor& output_grad) override {
    return inner_.backward_input(microbatch, stage, output_grad);
  }
  void backward_weight(int microbatch, int stage) override {
    inner_.backward_weight(microbatch, stage);
  }
  bool pairs_forward_backward() const override { return inner_.pairs_forward_backward(); }
  std::pair<Tensor, Tensor> forward_backward_input(int forward_microbatch, int forward_stage,
                                                   const Tensor& input, int backward_microbatch,
                                                   int backward_stage,
                                                   const Tensor& output_grad) override {
    return inner_.forward_backward_input(forward_microbatch, forward_stage, input,
                                         backward_microbatch, backward_stage, output_grad);
  }
  bool fuses_backward() const override { return inner_.fuses_backward(); }
  Tensor backward_full(int microbatch, int stage, const Tensor& output_grad) override {
    return inner_.backward_full(microbatch, stage, output_grad);
  }
  std::vector<int> gradient_blocks(parallel::pp::ActionKind kind, int stage) const override {
    return sink_ ? inner_.gradient_blocks(kind, stage) : std::vector<int>{};
  }
  void gradients_final(int block) override { sink_(block); }

 private:
  ModelStageCompute& inner_;
  const GradientSink& sink_;
};
}  // namespace

StepEngine::StepEngine(const config::ParallelConfig& parallel,
                       const parallel::ParallelContext& context,
                       const models::parallelize::PipelinePartition& partition)
    : name_(parallel.schedule().empty() ? "1f1b" : parallel.schedule()),
      virtual_stages_(partition.layout.chunks),
      pp_(context.shared_group(parallel::MeshAxis::Pp)),
      pp_size_(context.size(parallel::MeshAxis::Pp)) {
  TRIDENT_CHECK(partition.layout.ranks == pp_size_, "the pipeline split has ",
                partition.layout.ranks, " ranks, the pipeline group ", pp_size_);
}

bool StepEngine::accepts(int microbatches) const {
  if (microbatches < std::max(1, parallel::pp::min_microbatches(name_, pp_size_))) return false;
  if (pp_size_ == 1) return true;
  if (name_ == "zb-h1") return microbatches >= pp_size_;
  // Interleaved 1F1B cycles through the ranks in groups of pp micro-batches.
  if (name_ == "interleaved") return microbatches % pp_size_ == 0;
  return true;
}

int StepEngine::microbatches_for(int wanted) const {
  int count = std::max(1, wanted);
  while (!accepts(count)) ++count;
  return count;
}

parallel::pp::PipelineExecutor& StepEngine::executor(int microbatches, bool forward_only) {
  auto& slot = executors_[{microbatches, forward_only}];
  if (!slot) {
    parallel::pp::ScheduleRequest request;
    request.name = name_;
    request.pp = pp_size_;
    request.microbatches = microbatches;
    request.virtual_stages = virtual_stages_;
    parallel::pp::Schedule schedule = parallel::pp::make_schedule(request);
    if (forward_only) schedule = parallel::pp::forward_only(schedule);
    slot = std::make_unique<parallel::pp::PipelineExecutor>(std::move(schedule), pp_);
  }
  return *slot;
}

parallel::pp::ExecutorStats StepEngine::train(ModelStageCompute& compute, int microbatches,
                                              const GradientSink& sink) {
  ReportingCompute reporting(compute, sink);
  return executor(microbatches, false).run(reporting);
}

parallel::pp::ExecutorStats StepEngine::forward(ModelStageCompute& compute, int microbatches) {
  const GradientSink none;
  ReportingCompute reporting(compute, none);
  return executor(microbatches, true).run(reporting);
}

}  // namespace trident::train
