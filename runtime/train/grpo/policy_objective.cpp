#include "runtime/train/grpo/policy_objective.h"

#include "ops/ops.h"
#include "parallel/tp/tp_group.h"
#include "runtime/core/error.h"
#include "runtime/train/grpo/vocab_sharded.h"

namespace trident::train::grpo {

namespace {
models::Weight final_norm(models::DeepSeekV3Model& model) {
  return models::weight_of(model.params(), "model.norm.weight");
}
models::Weight lm_head(models::DeepSeekV3Model& model) {
  return models::weight_of(model.params(), "lm_head.weight");
}

// The logits of the sampling distribution: lm_head's output divided by the temperature.
void head_forward(models::DeepSeekV3Model& model, const Tensor& h, double temperature,
                  HeadPass& pass) {
  const Tensor normed =
      models::norm_step_forward(final_norm(model), model.dims().eps, h, pass.norm);
  pass.logits = models::linear_step_forward(lm_head(model), normed, pass.head);
  if (temperature != 1.0)
    ops::scale(pass.logits, static_cast<float>(1.0 / temperature), pass.logits);
}

// d loss / d h from d loss / d (tempered) logits; the head's weight gradients accumulate.
Tensor head_backward(models::DeepSeekV3Model& model, Tensor dlogits, double temperature,
                     HeadPass& pass) {
  const models::Weight head = lm_head(model);
  const models::Weight norm = final_norm(model);
  if (temperature != 1.0) ops::scale(dlogits, static_cast<float>(1.0 / temperature), dlogits);
  Tensor dnormed = models::linear_step_backward_input(head, dlogits, pass.head);
  // lm_head is column-parallel over the vocabulary: each TP rank holds a partial sum.
  parallel::tp::tp_enter_backward(model.tp(), dnormed);
  models::linear_step_backward_weight(head, pass.head);
  const Tensor dh = models::norm_step_backward_input(norm, dnormed, pass.norm);
  models::norm_step_backward_weight(norm, pass.norm);
  return dh;
}
}  // namespace

GroupBatch filler_group() {
  GroupBatch group;
  group.filler = true;
  group.rows.batch = 1;
  group.rows.seq = 1;
  group.rows.ids = Tensor::from_ints({0}, {1});
  return group;
}

std::vector<StageInput> stage_inputs(const std::vector<GroupBatch>& groups) {
  std::vector<StageInput> out;
  for (const GroupBatch& g : groups)
    out.push_back(StageInput{g.rows.ids, g.rows.batch, g.rows.seq});
  return out;
}

void ScoringObjective::begin_pass(const std::vector<GroupBatch>& groups) {
  groups_ = &groups;
  scores_.assign(groups.size(), CompletionScores{});
}

void ScoringObjective::forward(int micro, const Tensor& h, const models::SequenceLayout&, float,
                               StageRecord&) {
  const GroupBatch& group = groups_->at(static_cast<size_t>(micro));
  if (group.filler) return;
  HeadPass pass;
  head_forward(model_, h, temperature_, pass);
  scores_[static_cast<size_t>(micro)] =
      model_completion_scores(model_, pass.logits, group.rows, group.source);
}

Tensor ScoringObjective::backward(int /*micro*/) {
  TRIDENT_CHECK(false, "scoring has no backward");
  return Tensor{};
}

void PolicyObjective::begin_pass(const std::vector<GroupBatch>& groups) {
  groups_ = &groups;
  kept_.clear();
  sums_ = PolicyPassSums{};
}

void PolicyObjective::forward(int micro, const Tensor& h, const models::SequenceLayout&, float,
                              StageRecord&) {
  const GroupBatch& group = groups_->at(static_cast<size_t>(micro));
  Kept& kept = kept_[micro];
  if (group.filler) return;
  head_forward(model_, h, temperature_, kept.head);
  const CompletionScores now =
      model_completion_scores(model_, kept.head.logits, group.rows, group.source);
  std::vector<std::vector<int32_t>> tokens;
  std::vector<std::vector<double>> dlogp(group.source.size());
  for (size_t j = 0; j < group.source.size(); ++j) {
    const std::vector<int32_t>& completion = group.source[j].completion;
    tokens.push_back(completion);
    const double coef = group.coefficients[j];
    for (size_t t = 0; t < completion.size(); ++t) {
      const double logp = now.logp[j][t];
      const double ref = group.ref_scores != nullptr ? group.ref_scores->logp[j][t] : 0.0;
      const TokenObjective obj =
          token_objective(logp, group.old_scores->logp[j][t], ref, group.advantages[j], options_);
      // loss = −J, so d loss / d logp = −c · d s / d logp.
      dlogp[j].push_back(coef == 0.0 ? 0.0 : -coef * obj.dlogp);
      if (coef == 0.0) continue;
      sums_.objective += coef * obj.value;
      sums_.tokens += 1.0;
      sums_.clipped += obj.clipped ? 1.0 : 0.0;
      sums_.kl += obj.kl;
      sums_.entropy += now.entropy[j][t];
    }
  }
  kept.dlogits = model_completion_logit_grad(model_, kept.head.logits, group.rows, tokens, dlogp);
  kept.head.logits = Tensor{};
}

Tensor PolicyObjective::backward(int micro) {
  const auto it = kept_.find(micro);
  TRIDENT_CHECK(it != kept_.end(), "GRPO backward of micro-batch ", micro, " before its forward");
  const GroupBatch& group = groups_->at(static_cast<size_t>(micro));
  Tensor dh;
  if (group.filler) {
    // No loss: a zero gradient adds nothing to any weight but runs the layers' backward.
    dh = Tensor::zeros({group.rows.batch * group.rows.seq, model_.dims().hidden}, DType::F32,
                       model_.params().device());
  } else {
    dh = head_backward(model_, std::move(it->second.dlogits), temperature_, it->second.head);
  }
  kept_.erase(it);
  return dh;
}

}  // namespace trident::train::grpo
