#pragma once
// How the model is cut into pipeline stages (docs/pipeline.md): virtual stage s holds a
// contiguous range of decoder layers, stage 0 also the embedding, the last stage also the
// final norm, the head, the loss and the MTP modules. Which rank runs which stage is the
// schedule's StageLayout (linear, interleaved, V-shape).
#include <cstdint>
#include <memory>
#include <vector>

#include "models/deepseek_v3/model.h"
#include "parallel/pp/schedule.h"
#include "runtime/config/trident.pb.h"

namespace trident::models::parallelize {

struct StageRange {
  int64_t first_layer = 0;  // decoder layers [first_layer, last_layer); may be empty
  int64_t last_layer = 0;
  bool embedding = false;  // stage 0
  bool head = false;       // the last stage: final norm, lm_head, loss, MTP
  int64_t num_layers() const { return last_layer - first_layer; }
};

struct PipelinePartition {
  parallel::pp::StageLayout layout;
  std::vector<StageRange> stages;  // one per virtual stage, in stage order

  int first_rank() const { return layout.rank_of(0); }
  int last_rank() const { return layout.rank_of(layout.num_stages() - 1); }
  // The last stage runs MTP, which reads the embedding: when it sits on another rank than
  // stage 0 that rank keeps a second copy of the embedding (runtime/train/optimizer.h).
  bool embedding_copy(int64_t mtp_depth) const {
    return mtp_depth > 0 && first_rank() != last_rank();
  }
};

// Layer counts per virtual stage. `explicit_counts` (parallel.stage_layers) is used when not
// empty and must have one entry ≥ 0 per stage summing to `layers`; otherwise each stage gets
// layers / stages and the remainder goes one layer each to the middle stages first, then to
// the last and the first stage.
std::vector<int64_t> stage_layer_counts(int64_t layers, int stages,
                                        const std::vector<int64_t>& explicit_counts);

PipelinePartition partition_model(int64_t layers, const parallel::pp::StageLayout& layout,
                                  const std::vector<int64_t>& explicit_counts);

// What pipeline rank `rank` holds: the union of its stages' parts (the embedding also on the
// last stage's rank when the model has MTP).
models::PipelineHolding holding_of_rank(const PipelinePartition& partition, int rank,
                                        int64_t mtp_depth);

// The layout a schedule name runs on (parallel.schedule, parallel.virtual_stages), validated
// with errors naming the config fields.
parallel::pp::StageLayout layout_for_schedule(const config::ParallelConfig& parallel);

// The split a run uses: parallel.schedule's layout over parallel.pp ranks and
// parallel.stage_layers. With parallel.pp = 1 it is one stage holding the whole model: the
// step engine runs every layout as a pipeline schedule, one-stage ones included.
PipelinePartition pipeline_partition(const config::ModelConfig& model,
                                     const config::ParallelConfig& parallel);

}  // namespace trident::models::parallelize
