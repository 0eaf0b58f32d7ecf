#include "runtime/train/grpo/staged_decoder.h"

#include <algorithm>

#include "parallel/comm/tags.h"
#include "runtime/core/error.h"
#include "runtime/train/grpo/vocab_sharded.h"

namespace trident::train::grpo {

namespace {
// Rows [row · n + n − 1] of h [rows · n, H]: each row's last position (h viewed as rows of
// n positions, its last H columns).
Tensor last_positions(const Tensor& h, int64_t n) {
  if (n == 1) return h;
  const int64_t width = h.size(1);
  return models::take_columns(h, n * width, (n - 1) * width, width);
}
}  // namespace

Tensor head_logits(models::DeepSeekV3Model& model, const Tensor& h) {
  models::NormStep norm_step;
  models::LinearStep head_step;
  const Tensor normed = models::norm_step_forward(
      models::weight_of(model.params(), "model.norm.weight"), model.dims().eps, h, norm_step);
  return models::linear_step_forward(models::weight_of(model.params(), "lm_head.weight"), normed,
                                     head_step);
}

StagedDecoder::StagedDecoder(models::DeepSeekV3Model& model,
                             const models::parallelize::PipelinePartition& partition,
                             const parallel::ParallelContext& context)
    : model_(model),
      partition_(partition),
      pp_(context.pp()),
      rank_(context.rank(parallel::MeshAxis::Pp)) {}

StagedDecoder::StagedDecoder(models::DeepSeekV3Model& model)
    : model_(model),
      own_partition_(models::parallelize::partition_model(
          model.num_layers(), parallel::pp::StageLayout::linear(1), {})),
      partition_(own_partition_) {}

bool StagedDecoder::last_stage() const { return partition_.last_rank() == rank_; }

std::vector<models::MlaCache> StagedDecoder::make_caches(int64_t rows, int64_t capacity) const {
  std::vector<models::MlaCache> caches;
  for (int64_t l = 0; l < model_.num_layers(); ++l) {
    const bool mine = model_.holding().holds_layer(l);
    caches.emplace_back(mine ? rows : 1, mine ? capacity : 1, model_.dims(),
                        model_.params().device());
  }
  return caches;
}

Tensor StagedDecoder::step(const std::vector<int32_t>& ids, int64_t rows, int64_t n,
                           const ops::RopeTable& rope, std::vector<models::MlaCache>& caches) {
  const int64_t tokens = rows * n;
  const int stages = partition_.layout.num_stages();
  Tensor h;  // the hidden states handed from the previous stage on this rank
  for (int s = 0; s < stages; ++s) {
    if (partition_.layout.rank_of(s) != rank_) continue;
    const models::parallelize::StageRange& range = partition_.stages[static_cast<size_t>(s)];
    if (range.embedding) {
      h = model_.embedding().forward(Tensor::from_ints(ids, {tokens}).on(model_.params().device()));
    } else if (partition_.layout.rank_of(s - 1) != rank_) {
      h = Tensor::empty({tokens, model_.dims().hidden}, DType::F32, model_.params().device());
      pp_->recv(h, partition_.layout.rank_of(s - 1), parallel::comm::tags::kDecodeActivation)
          ->wait();
    }
    for (int64_t l = range.first_layer; l < range.last_layer; ++l) {
      h = model_.layer(l).forward_decode(h, n, rope, caches[static_cast<size_t>(l)]);
    }
    if (range.head) {
      return gather_vocab_logits(model_, head_logits(model_, last_positions(h, n)));
    }
    if (partition_.layout.rank_of(s + 1) != rank_) {
      pp_->send(h, partition_.layout.rank_of(s + 1), parallel::comm::tags::kDecodeActivation)
          ->wait();
    }
  }
  return Tensor{};
}

std::vector<int32_t> StagedDecoder::from_last_stage(std::vector<int32_t> values) const {
  if (pp_ == nullptr || values.empty()) return values;
  Tensor t = Tensor::from_ints(values, {static_cast<int64_t>(values.size())});
  pp_->broadcast(t, partition_.last_rank())->wait();
  std::copy_n(t.data<int32_t>(), values.size(), values.data());
  return values;
}

void StagedDecoder::filler_step() {
  const models::SequenceLayout layout = model_.sequence_layout(1, 1);
  const Tensor x = Tensor::full({1, model_.dims().hidden}, 0.01f).on(model_.params().device());
  for (int s = 0; s < partition_.layout.num_stages(); ++s) {
    if (partition_.layout.rank_of(s) != rank_) continue;
    const models::parallelize::StageRange& range = partition_.stages[static_cast<size_t>(s)];
    std::vector<models::DecoderLayerContext> contexts;
    model_.forward_layers(range.first_layer, range.last_layer, x, layout, 0.0f, contexts);
  }
}

}  // namespace trident::train::grpo
