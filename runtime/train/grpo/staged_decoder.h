#pragma once
// One decode step of the policy through this rank's pipeline stages, for every layout: the
// virtual stages of the run's partition are visited in order, each rank running the ones it
// holds (pp = 1: one stage with the whole model). Stage 0 embeds the step's token ids, every
// stage runs its layers with DecoderLayer::forward_decode on its own MLA latent caches, and the
// hidden states go on to the rank of the next stage (a blocking point-to-point message per rank
// boundary; consecutive stages on one rank hand over in place). The last stage applies the final
// norm and lm_head to each row's last position; under tensor parallelism its TP ranks gather
// whole vocabulary rows so that they all sample the same token.
//
// Decode steps are small and latency-bound (one token per row), so nothing is overlapped: a
// step costs one message per rank boundary, whatever the number of rows, and all samples of the
// prompts of one length decode as one batch (generate.h), which amortises it.
#include <cstdint>
#include <vector>

#include "models/deepseek_v3/model.h"
#include "models/deepseek_v3/parallelize/pipeline_partition.h"
#include "parallel/context.h"

namespace trident::train::grpo {

class StagedDecoder {
 public:
  // `model` holds the stages of this rank in `partition` (the context's pp rank).
  StagedDecoder(models::DeepSeekV3Model& model,
                const models::parallelize::PipelinePartition& partition,
                const parallel::ParallelContext& context);
  // The whole model on one rank.
  explicit StagedDecoder(models::DeepSeekV3Model& model);

  models::DeepSeekV3Model& model() { return model_; }
  bool last_stage() const;

  // MLA caches for `rows` rows of up to `capacity` positions: full size for the layers this rank
  // holds, empty placeholders for the others.
  std::vector<models::MlaCache> make_caches(int64_t rows, int64_t capacity) const;

  // ids [rows · n] (read on stage 0's rank) → logits [rows, V] of each row's last position on
  // the last stage's rank, undefined elsewhere.
  Tensor step(const std::vector<int32_t>& ids, int64_t rows, int64_t n, const ops::RopeTable& rope,
              std::vector<models::MlaCache>& caches);

  // The last stage's values on every rank of the pipeline (the sampled tokens).
  std::vector<int32_t> from_last_stage(std::vector<int32_t> values) const;

  // Filler work for ForwardLockstep (lockstep.h): one token through the layers of this rank's
  // stages, in stage order, its result dropped (so its expert-parallel collectives pair with
  // another rank's real step).
  void filler_step();

 private:
  models::DeepSeekV3Model& model_;
  models::parallelize::PipelinePartition own_partition_;  // the one-rank split
  const models::parallelize::PipelinePartition& partition_;
  parallel::comm::Communicator* pp_ = nullptr;
  int rank_ = 0;
};

// Final norm and lm_head on hidden states h [T, H] → logits [T, V] (under TP this rank's
// vocabulary slice).
Tensor head_logits(models::DeepSeekV3Model& model, const Tensor& h);

}  // namespace trident::train::grpo
