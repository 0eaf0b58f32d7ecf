#include "runtime/train/grpo/pipeline_policy.h"

#include <algorithm>

#include "parallel/dp/reduce_sum.h"
#include "runtime/train/grpo/vocab_sharded.h"
#include "runtime/train/pipeline_partition.h"

namespace trident::train::grpo {

namespace {
// Message tags of the two directions; MPI keeps the order of messages between a pair with one
// tag, and every stage sends and receives in the same order.
constexpr int kActivationTag = 7101;
constexpr int kGradientTag = 7102;

models::Weight held(models::DeepSeekV3Model& model, const char* name) {
  return models::weight_of(model.params(), name);
}
}  // namespace

models::PipelineHolding grpo_pipeline_holding(int64_t layers, int pp_size, int rank,
                                              const std::vector<int64_t>& stage_layers) {
  const PipelinePartition partition =
      partition_model(layers, pp::StageLayout::linear(pp_size), stage_layers);
  return holding_of_rank(partition, rank, /*mtp_depth=*/0);
}

StagedPolicy::StagedPolicy(models::DeepSeekV3Model& model, parallel::Communicator* pp)
    : model_(&model), pp_(pp != nullptr && pp->size() > 1 ? pp : nullptr) {
  last_layer_ = model.num_layers();
  if (!pipelined()) return;
  const models::PipelineHolding& h = model.holding();
  TRIDENT_CHECK(!h.layers.empty(), "a pipeline stage must hold a subset of the layers");
  int64_t first = -1, last = -1;
  for (int64_t l = 0; l < model.num_layers(); ++l) {
    if (!h.holds_layer(l)) continue;
    if (first < 0) first = l;
    TRIDENT_CHECK(last < 0 || last == l, "stage ", pp_->rank(), " holds non-contiguous layers");
    last = l + 1;
  }
  first_layer_ = first < 0 ? 0 : first;
  last_layer_ = last < 0 ? 0 : last;
  TRIDENT_CHECK(h.embedding == first_stage() && h.head == last_stage(), "stage ", pp_->rank(),
                " of ", pp_->size(), " holds the embedding: ", h.embedding, ", the head: ", h.head);
}

Tensor StagedPolicy::stage_input(const Tensor& ids, int64_t rows) {
  if (first_stage()) return model_->embedding().forward(ids);
  Tensor h = Tensor::empty({rows, model_->dims().hidden});
  pp_->recv(h, pp_->rank() - 1, kActivationTag)->wait();
  return h;
}

void StagedPolicy::send_forward(const Tensor& h) {
  pp_->send(h, pp_->rank() + 1, kActivationTag)->wait();
}

void StagedPolicy::forward(const Tensor& ids, int64_t batch, int64_t seq, PolicyForward& fwd) {
  if (!pipelined()) return policy_forward(*model_, ids, batch, seq, fwd);
  fwd.layout = model_->sequence_layout(batch, seq);
  fwd.ids = ids;
  const Tensor x = stage_input(ids, batch * seq);
  const Tensor h = model_->forward_layers(first_layer_, last_layer_, x, fwd.layout, 0.0f,
                                          fwd.layers);
  if (!last_stage()) {
    send_forward(h);
    fwd.logits = Tensor();
    return;
  }
  const Tensor normed = models::norm_step_forward(held(*model_, "model.norm.weight"),
                                                  model_->dims().eps, h, fwd.norm);
  fwd.logits = models::linear_step_forward(held(*model_, "lm_head.weight"), normed, fwd.head);
}

void StagedPolicy::backward(const Tensor& dlogits, PolicyForward& fwd) {
  if (!pipelined()) return policy_backward(*model_, dlogits, fwd);
  Tensor dh;
  if (last_stage()) {
    const models::Weight head = held(*model_, "lm_head.weight");
    const models::Weight norm = held(*model_, "model.norm.weight");
    Tensor dnormed = models::linear_step_backward_input(head, dlogits, fwd.head);
    // Under TP lm_head is column-parallel over the vocabulary: each TP rank of the last stage
    // holds a partial sum.
    parallel::tp_enter_backward(model_->tp(), dnormed);
    models::linear_step_backward_weight(head, fwd.head);
    dh = models::norm_step_backward_input(norm, dnormed, fwd.norm);
    models::norm_step_backward_weight(norm, fwd.norm);
  } else {
    dh = Tensor::empty({fwd.ids.numel(), model_->dims().hidden});
    pp_->recv(dh, pp_->rank() + 1, kGradientTag)->wait();
  }
  const Tensor dx = model_->backward_layers(first_layer_, last_layer_, dh, fwd.layers, true);
  if (first_stage()) {
    model_->embedding().backward_weight(fwd.ids, dx);
  } else {
    pp_->send(dx, pp_->rank() - 1, kGradientTag)->wait();
  }
  fwd.layers.clear();
  fwd.logits = Tensor();
}

CompletionScores StagedPolicy::score(const std::vector<ScoredRow>& rows) {
  if (!pipelined()) return score_rows(*model_, rows);
  const RowBatch batch = make_row_batch(rows);
  PolicyForward fwd;
  forward(batch.ids, batch.batch, batch.seq, fwd);
  if (!last_stage()) return {};
  return model_completion_scores(*model_, fwd.logits, batch, rows);
}

Tensor StagedPolicy::decode(const std::vector<int32_t>& ids, int64_t rows, int64_t n,
                            const ops::cpu::RopeTable& rope,
                            std::vector<models::MlaCache>& caches) {
  const int64_t tokens = rows * n;
  Tensor h = first_stage()
                 ? model_->embedding().forward(Tensor::from_ints(ids, {tokens}))
                 : stage_input(Tensor(), tokens);
  for (int64_t l = first_layer_; l < last_layer_; ++l) {
    h = model_->layer(l).forward_decode(h, n, rope, caches[static_cast<size_t>(l)]);
  }
  if (!last_stage()) {
    send_forward(h);
    return Tensor();
  }
  // Each row's last position.
  Tensor last = h;
  if (n > 1) {
    const int64_t width = h.size(1);
    last = Tensor::empty({rows, width});
    for (int64_t r = 0; r < rows; ++r) {
      std::copy_n(h.data<float>() + (r * n + n - 1) * width, width,
                  last.data<float>() + r * width);
    }
  }
  // Whole vocabulary rows on every TP rank of the last stage: they all sample the same token.
  return gather_vocab_logits(*model_, policy_head_logits(*model_, last));
}

void StagedPolicy::filler(bool backward) {
  if (!pipelined()) {
    if (backward) {
      grpo::filler_forward_backward(*model_);
    } else {
      grpo::filler_forward(*model_);
    }
    return;
  }
  // One row of small activations through this stage's layers, its result dropped; a zero output
  // gradient adds nothing to any weight gradient.
  const models::SequenceLayout layout = model_->sequence_layout(1, 1);
  std::vector<models::DecoderLayerContext> contexts;
  const Tensor x = Tensor::full({1, model_->dims().hidden}, 0.01f);
  const Tensor h = model_->forward_layers(first_layer_, last_layer_, x, layout, 0.0f, contexts);
  if (backward) {
    model_->backward_layers(first_layer_, last_layer_, Tensor::zeros(h.shape()), contexts, true);
  }
}

void StagedPolicy::filler_forward() { filler(false); }
void StagedPolicy::filler_forward_backward() { filler(true); }

std::vector<double> StagedPolicy::sum_over_stages(const std::vector<double>& values) {
  return parallel::dp::sum_over_ranks(pp_, values);
}

std::vector<int32_t> StagedPolicy::from_last_stage(std::vector<int32_t> values) {
  if (!pipelined() || values.empty()) return values;
  Tensor t = Tensor::from_ints(values, {static_cast<int64_t>(values.size())});
  pp_->broadcast(t, pp_->size() - 1)->wait();
  std::copy_n(t.data<int32_t>(), values.size(), values.data());
  return values;
}

}  // namespace trident::train::grpo
