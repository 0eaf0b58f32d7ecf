#pragma once
// The model's pipeline stages as a parallel::pp::StageCompute: F, B and W of (micro-batch,
// virtual stage) on the parts of DeepSeekV3Model this rank holds. Every pass of every phase runs
// through it: pretraining and SFT, held-out evaluation, and GRPO's scoring and policy updates.
// They differ only in the StageObjective, what the last stage computes from the final hidden
// states (cross-entropy with MTP, the clipped GRPO surrogate, token log-probabilities).
//
//   F  stage 0 embeds the micro-batch's input ids; every stage runs its decoder layers; the
//      last stage hands the final hidden states to the objective.
//   B  the last stage starts from the objective's gradient (the objective also accumulates the
//      weight gradients of the head and MTP: nothing upstream waits on them longer than on the
//      head's input gradient); then the input gradients of the stage's layers.
//   W  the decoder layers' backward_weight, and on stage 0 the embedding's scatter.
//
// Gradient blocks (models/deepseek_v3/parallelize/gradient_layout.h): W of a stage completes
// its layers (and the embedding on stage 0), B of the last stage the objective's blocks; the
// executor reports each block once its last action of the step has run, which is when the
// optimizer may reduce it.
#include <cstdint>
#include <map>
#include <utility>
#include <vector>

#include "models/deepseek_v3/model.h"
#include "models/deepseek_v3/parallelize/gradient_layout.h"
#include "models/deepseek_v3/parallelize/pipeline_partition.h"
#include "parallel/pp/executor.h"

namespace trident::train {

// What the forwards of one step recorded on this rank.
struct StageRecord {
  double balance_sum = 0.0;  // Σ of the MoE layers' sequence-wise balance sums this rank ran
  int64_t tokens = 0;        // model input tokens (stage 0 only)
  // One entry per MoE layer of the whole model (main layers in order, then MTP); layers of
  // other ranks stay zero, so a sum over the pipeline group gives every layer's load.
  std::vector<models::ExpertLoad> loads;

  // Adds the balance sum and token counts of MoE layer `layer` (main index, MTP after them).
  void add_moe(int64_t layer, const models::MoeContext& moe);
  void clear();

  std::vector<int64_t> load_slot;  // per layer index: its entry in `loads`, −1 for dense layers
};

// The model's input for one micro-batch: token ids [batch · seq], row-major.
struct StageInput {
  Tensor ids;
  int64_t batch = 0;
  int64_t seq = 0;
};

// What the last pipeline stage computes from the final hidden states.
class StageObjective {
 public:
  virtual ~StageObjective() = default;
  // F of micro-batch `micro` on the last stage: h [T, H] are the final hidden states; keeps what
  // backward needs. MoE layers the objective runs (MTP) are recorded in `record`.
  virtual void forward(int micro, const Tensor& h, const models::SequenceLayout& layout,
                       float balance_coef, StageRecord& record) = 0;
  // B on the last stage: d loss / d h of micro-batch `micro`; the weight gradients of what the
  // objective ran (head, MTP) accumulate. Not called on forward-only passes.
  virtual Tensor backward(int micro) = 0;
  // The gradient blocks backward writes: none for the forward-only objectives (evaluation,
  // scoring), which never run backward.
  virtual std::vector<int> gradient_blocks(
      const models::parallelize::GradientBlocks& /*blocks*/) const {
    return {};
  }
};

class ModelStageCompute : public parallel::pp::StageCompute {
 public:
  // `model` holds (at least) the parts of the stages `pp_rank` runs in `partition`.
  ModelStageCompute(models::DeepSeekV3Model& model,
                    const models::parallelize::PipelinePartition& partition, int pp_rank);

  // Sets the step's micro-batches (kept by reference until the step ends), the objective of the
  // last stage and the balance-loss coefficient of the MoE layers (α / global rows; 0: off).
  void begin_step(const std::vector<StageInput>& micros, StageObjective& objective,
                  float balance_coef);
  const StageRecord& record() const { return record_; }
  models::DeepSeekV3Model& model() { return model_; }

  std::vector<int64_t> activation_shape(int microbatch, int stage) const override;
  Device activation_device() const override { return model_.params().device(); }
  Tensor forward(int microbatch, int stage, const Tensor& input) override;
  Tensor backward_input(int microbatch, int stage, const Tensor& output_grad) override;
  void backward_weight(int microbatch, int stage) override;
  // A fused B + W layer by layer, each layer's weight gradients right after its input
  // gradient, so its gradient block is final (and reducible) while the layers below still run.
  bool fuses_backward() const override { return true; }
  Tensor backward_full(int microbatch, int stage, const Tensor& output_grad) override;
  std::vector<int> gradient_blocks(parallel::pp::ActionKind kind, int stage) const override;
  // DualPipe's F&B blocks run their layers in pairs (DeepSeekV3Model::forward_backward_layers):
  // under expert parallelism one micro-batch's all-to-alls travel while the other's GEMMs run.
  bool pairs_forward_backward() const override { return true; }
  std::pair<Tensor, Tensor> forward_backward_input(int forward_microbatch, int forward_stage,
                                                   const Tensor& input, int backward_microbatch,
                                                   int backward_stage,
                                                   const Tensor& output_grad) override;

 private:
  // What F(m, s) keeps for B and W.
  struct StageState {
    models::SequenceLayout layout;
    Tensor ids;  // stage 0: input ids (the embedding's W needs them)
    std::vector<models::DecoderLayerContext> layers;
    Tensor embedding_grad;  // stage 0, between B and W: the gradient of the embedded input
  };
  using Key = std::pair<int, int>;  // (micro-batch, stage)

  const models::parallelize::StageRange& range(int stage) const;
  const StageInput& micro(int microbatch) const;
  StageState& state_of(int microbatch, int stage, const char* action);
  // The gradient entering the stage's layers from above: the objective's on the last stage.
  Tensor output_gradient(const models::parallelize::StageRange& r, int microbatch,
                         const Tensor& output_grad);
  // F's parts around the layers: the layers' input (the embedding on the first stage, else a
  // copy of the received activation) and what leaves the stage (the loss on the last).
  Tensor stage_input(int microbatch, int stage, const Tensor& input, StageState& state);
  Tensor stage_output(int microbatch, int stage, const Tensor& h, StageState& state);
  // B's part below the layers: what leaves the stage (kept for the embedding's W on the first).
  Tensor input_gradient(const models::parallelize::StageRange& r, StageState& state,
                        const Tensor& d);

  models::DeepSeekV3Model& model_;
  const models::parallelize::PipelinePartition& partition_;
  const models::parallelize::GradientBlocks blocks_;
  int rank_;
  const std::vector<StageInput>* micros_ = nullptr;
  StageObjective* objective_ = nullptr;
  float balance_coef_ = 0.0f;
  std::map<Key, StageState> states_;
  StageRecord record_;
};

}  // namespace trident::train
