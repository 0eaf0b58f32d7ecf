#pragma once
// What the last pipeline stage computes in pretraining, SFT and held-out evaluation.
#include <cstdint>
#include <map>
#include <vector>

#include "models/batch.h"
#include "models/deepseek_v3/model.h"
#include "runtime/train/model_stage_compute.h"

namespace trident::train {

// The training loss: LM cross-entropy, then the MTP depths (which embed their shifted inputs
// with the model's embedding, so the embedding's gradient also comes from here), every loss
// divided by the step's global target counts (LossScales). The gradients summed over
// micro-batches and ranks are then the whole batch's, whatever the layout.
class PretrainObjective final : public StageObjective {
 public:
  explicit PretrainObjective(const models::DeepSeekV3Model& model) : model_(model) {}

  // The step's micro-batches (kept by reference until the step ends) and global scales.
  void begin_step(const std::vector<models::TokenBatch>& micros, const models::LossScales& scales);
  // Σ over this rank's micro-batches of their contributions (zero off the last stage).
  double lm_loss() const { return lm_loss_; }
  double mtp_loss() const { return mtp_loss_; }

  void forward(int micro, const Tensor& h, const models::SequenceLayout& layout, float balance_coef,
               StageRecord& record) override;
  Tensor backward(int micro) override;
  std::vector<int> gradient_blocks(
      const models::parallelize::GradientBlocks& blocks) const override;

 private:
  const models::DeepSeekV3Model& model_;
  const std::vector<models::TokenBatch>* micros_ = nullptr;
  models::LossScales scales_;
  std::map<int, models::OutputContext> contexts_;
  double lm_loss_ = 0.0;
  double mtp_loss_ = 0.0;
};

// Held-out evaluation: the main model's cross-entropy summed over counted targets, forward only.
class EvalObjective final : public StageObjective {
 public:
  explicit EvalObjective(const models::DeepSeekV3Model& model) : model_(model) {}
  void begin_step(const std::vector<models::TokenBatch>& micros);
  double ce_sum() const { return ce_sum_; }
  int64_t targets() const { return targets_; }

  void forward(int micro, const Tensor& h, const models::SequenceLayout& layout, float balance_coef,
               StageRecord& record) override;
  Tensor backward(int micro) override;

 private:
  const models::DeepSeekV3Model& model_;
  const std::vector<models::TokenBatch>* micros_ = nullptr;
  double ce_sum_ = 0.0;
  int64_t targets_ = 0;
};

// The model inputs of token micro-batches, as the stage compute takes them.
std::vector<StageInput> stage_inputs(const std::vector<models::TokenBatch>& micros);

}  // namespace trident::train
