// Held-out evaluation under pipeline parallelism (docs/pipeline.md): a forward-only pass over
// the stages, one micro-batch after another. Stage 0 embeds the input ids, every stage runs its
// decoder layers, and the activation goes on to the next stage's rank (or stays, where the next
// stage is on the same rank: interleaved and V-shape layouts); the last stage runs the final
// norm and the head and sums the cross-entropy. No schedule is needed: nothing flows backwards,
// and every rank visits (micro-batch, stage) in the same order, so each send meets a receive
// already posted or about to be. The sums, known on the last stage's rank, are added over pp,
// then over dp, so every rank gets the same mean.
#include "models/deepseek_v3/loss.h"
#include "parallel/dp/reduce_sum.h"
#include "runtime/core/error.h"
#include "runtime/train/trainer.h"

namespace trident::train {

namespace {
// A tag neither the executor's streams nor the embedding-gradient exchange uses.
constexpr int kEvalActivationTag = 32701;
}  // namespace

EvalMetrics Trainer::pipeline_evaluate(int64_t batches) const {
  EvalMetrics out;
  if (!eval_sampler_) return out;
  models::DeepSeekV3Model& model = *model_;
  const PipelinePartition& partition = *partition_;
  parallel::Communicator& pp = *pp_;
  const int me = pp.rank();
  const int stages = partition.layout.num_stages();
  double ce_sum = 0.0;
  std::vector<int64_t> targets{0};
  for (int64_t b = 0; b < batches; ++b) {
    for (int64_t micro = 0; micro < micro_batches_per_rank(); ++micro) {
      const models::TokenBatch batch = eval_sampler_->rows(b + 1, rows_of(micro));
      const models::SequenceLayout layout = model.sequence_layout(batch.batch, batch.seq_len);
      const Shape shape{batch.batch * batch.seq_len, model.dims().hidden};
      Tensor carried;  // the previous stage's output, when that stage ran on this rank
      for (int s = 0; s < stages; ++s) {
        const int owner = partition.layout.rank_of(s);
        if (owner != me) continue;
        const StageRange& range = partition.stages[static_cast<size_t>(s)];
        Tensor x;
        if (range.embedding) {
          x = model.embedding().forward(models::input_ids(batch));
        } else if (partition.layout.rank_of(s - 1) == me) {
          x = std::move(carried);
        } else {
          x = Tensor::empty(shape);
          pp.recv(x, partition.layout.rank_of(s - 1), kEvalActivationTag)->wait();
        }
        std::vector<models::DecoderLayerContext> contexts;
        Tensor h = model.forward_layers(range.first_layer, range.last_layer, x, layout,
                                        /*balance_coef=*/0.0f, contexts);
        if (range.head) {
          models::HeadContext head;
          const models::HeadForward result =
              model.head().forward(h, models::shifted_targets(batch, 1), 1.0f, head);
          ce_sum += result.ce.loss_sum;
          targets[0] += result.ce.tokens;
          continue;
        }
        const int next = partition.layout.rank_of(s + 1);
        if (next == me) {
          carried = std::move(h);
        } else {
          pp.send(h, next, kEvalActivationTag)->wait();
        }
      }
    }
  }
  ce_sum = parallel::dp::sum_over_ranks(dp_.get(), parallel::dp::sum_over_ranks(pp_.get(), ce_sum));
  parallel::dp::sum_over_ranks(pp_.get(), targets);
  parallel::dp::sum_over_ranks(dp_.get(), targets);
  out.targets = targets[0];
  out.lm_loss = out.targets > 0 ? ce_sum / static_cast<double>(out.targets) : 0.0;
  return out;
}

}  // namespace trident::train
