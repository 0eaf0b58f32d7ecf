#pragma once
// The model's pipeline stages as a pp::StageCompute: F, B and W of (micro-batch, virtual
// stage) on the parts of DeepSeekV3Model this rank holds (runtime/train/pipeline_partition.h).
//
//   F  stage 0 embeds the micro-batch's input ids; every stage runs its decoder layers; the
//      last stage runs the final norm, the head, the cross-entropy and the MTP depths, with
//      every loss divided by the step's GLOBAL target counts (the LossScales given to
//      begin_step), so the gradients summed over micro-batches and ranks are the full batch's.
//   B  the last stage starts from its losses: MTP depths and head backward (their weight
//      gradients too: nothing upstream waits on them longer than on the head's input
//      gradient), then the input gradients of the stage's layers; the weight gradients of the
//      layers and of the embedding wait for W.
//   W  the decoder layers' backward_weight, and on stage 0 the embedding's scatter.
//
// Expert loads and balance-loss sums are recorded per forward; losses per micro-batch.
#include <cstdint>
#include <map>
#include <utility>
#include <vector>

#include "models/deepseek_v3/model.h"
#include "parallel/pp/executor.h"
#include "runtime/train/pipeline_partition.h"

namespace trident::train {

// What one step's stages of this rank produced.
struct PipelineStepSums {
  double lm_loss = 0.0;      // Σ over micro-batches (last stage; 0 elsewhere)
  double mtp_loss = 0.0;     // Σ over micro-batches of the depth-averaged MTP loss
  double balance_sum = 0.0;  // Σ of the MoE layers' balance sums this rank ran
  int64_t tokens = 0;        // model input tokens (stage 0 only)
  // One entry per MoE layer of the whole model (main layers in order, then MTP); layers of
  // other ranks stay zero, so a sum over the pipeline group gives every layer's load.
  std::vector<models::ExpertLoad> loads;
};

class ModelStageCompute : public pp::StageCompute {
 public:
  // `model` holds (at least) the parts of the stages `rank` runs in `partition`.
  ModelStageCompute(models::DeepSeekV3Model& model, const PipelinePartition& partition, int rank);

  // Sets the micro-batches (kept by reference until the step ends) and the global scales.
  void begin_step(const std::vector<models::TokenBatch>& micros, const models::LossScales& scales);
  const PipelineStepSums& sums() const { return sums_; }

  std::vector<int64_t> activation_shape(int microbatch, int stage) const override;
  Tensor forward(int microbatch, int stage, const Tensor& input) override;
  Tensor backward_input(int microbatch, int stage, const Tensor& output_grad) override;
  void backward_weight(int microbatch, int stage) override;

 private:
  // What F(m, s) keeps for B and W.
  struct StageState {
    models::SequenceLayout layout;
    Tensor ids;  // stage 0: input ids (the embedding's W needs them)
    std::vector<models::DecoderLayerContext> layers;
    models::HeadContext head;
    std::vector<models::MtpContext> mtp;
    Tensor embedding_grad;  // stage 0, between B and W: the gradient of the embedded input
  };
  using Key = std::pair<int, int>;  // (micro-batch, stage)

  const StageRange& range(int stage) const;
  const models::TokenBatch& micro(int microbatch) const;
  void record_layer(int64_t layer, const models::MoeContext& moe);
  void run_head(StageState& state, const models::TokenBatch& batch, const Tensor& h);

  models::DeepSeekV3Model& model_;
  const PipelinePartition& partition_;
  int rank_;
  const std::vector<models::TokenBatch>* micros_ = nullptr;
  models::LossScales scales_;
  float balance_coef_ = 0.0f;
  std::vector<int64_t> load_slot_;  // per layer index (main, then MTP): entry in sums_.loads
  std::map<Key, StageState> states_;
  PipelineStepSums sums_;
};

}  // namespace trident::train
