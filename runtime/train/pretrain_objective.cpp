#include "runtime/train/pretrain_objective.h"

#include "runtime/core/error.h"

namespace trident::train {

void PretrainObjective::begin_step(const std::vector<models::TokenBatch>& micros,
                                   const models::LossScales& scales) {
  micros_ = &micros;
  scales_ = scales;
  contexts_.clear();
  lm_loss_ = 0.0;
  mtp_loss_ = 0.0;
}

void PretrainObjective::forward(int micro, const Tensor& h, const models::SequenceLayout& layout,
                                float balance_coef, StageRecord& record) {
  const models::TokenBatch& batch = micros_->at(static_cast<size_t>(micro));
  models::OutputContext& ctx = contexts_[micro];
  const models::LossResult losses =
      model_.forward_outputs(batch, h, layout, scales_, balance_coef, ctx);
  lm_loss_ += losses.lm_loss;
  mtp_loss_ += losses.mtp_loss;
  for (int64_t d = 1; d <= model_.mtp_depth(); ++d) {
    const models::MtpContext& m = ctx.mtp[static_cast<size_t>(d - 1)];
    if (model_.mtp(d).layer().is_moe()) record.add_moe(model_.num_layers() + d - 1, m.layer.moe);
  }
}

Tensor PretrainObjective::backward(int micro) {
  const auto it = contexts_.find(micro);
  TRIDENT_CHECK(it != contexts_.end(), "the loss of micro-batch ", micro, " was never computed");
  const Tensor dh = model_.backward_outputs(it->second);
  contexts_.erase(it);
  return dh;
}

std::vector<int> PretrainObjective::gradient_blocks(
    const models::parallelize::GradientBlocks& blocks) const {
  std::vector<int> out{blocks.head()};
  for (int64_t d = 1; d <= model_.mtp_depth(); ++d) out.push_back(blocks.mtp(d));
  if (model_.mtp_depth() > 0) out.push_back(blocks.embedding());
  return out;
}

void EvalObjective::begin_step(const std::vector<models::TokenBatch>& micros) {
  micros_ = &micros;
  ce_sum_ = 0.0;
  targets_ = 0;
}

void EvalObjective::forward(int micro, const Tensor& h, const models::SequenceLayout& /*layout*/,
                            float /*balance_coef*/, StageRecord& /*record*/) {
  const models::TokenBatch& batch = micros_->at(static_cast<size_t>(micro));
  models::HeadContext ctx;
  const models::HeadForward out =
      model_.head().forward(h, models::shifted_targets(batch, 1, h.device()), 0.0f, ctx);
  ce_sum_ += out.ce.loss_sum;
  targets_ += out.ce.tokens;
}

Tensor EvalObjective::backward(int /*micro*/) {
  TRIDENT_CHECK(false, "held-out evaluation has no backward");
  return Tensor{};
}

std::vector<StageInput> stage_inputs(const std::vector<models::TokenBatch>& micros) {
  std::vector<StageInput> out;
  for (const models::TokenBatch& batch : micros) {
    out.push_back(StageInput{models::input_ids(batch), batch.batch, batch.seq_len});
  }
  return out;
}

}  // namespace trident::train
