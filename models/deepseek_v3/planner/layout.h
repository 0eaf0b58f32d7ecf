#pragma once
// The layout a plan is made for, resolved from the config and a GPU count: mesh sizes, the
// pipeline schedule, micro-batching, and which model pieces each pipeline rank holds.
#include <cstdint>
#include <string>
#include <vector>

#include "models/deepseek_v3/registry.h"
#include "runtime/config/trident.pb.h"

namespace trident::models::planner {

enum class Schedule { k1F1B, kInterleaved, kZbH1, kDualPipeV };
Schedule parse_schedule(const std::string& name);  // "" means 1f1b
const char* schedule_name(Schedule schedule);

struct Layout {
  int64_t world = 1;
  int64_t pp = 1, dp = 1, tp = 1;
  int64_t ep = 1, etp = 1, edp = 1;  // MoE refold: ep · etp · edp = dp · tp
  bool zero1 = false;
  Schedule schedule = Schedule::k1F1B;
  int64_t chunks_per_rank = 1;  // model chunks per pipeline rank (interleaved: v; dualpipev: 2)
  int64_t microbatches = 1;     // per pipeline per step
  int64_t micro_batch = 1;      // sequences per micro-batch per data-parallel rank
  int64_t seq_len = 1;
  int64_t global_batch = 1;         // sequences per step
  int64_t a2a_chunks = 1;           // > 1: all-to-all overlapped with compute
  int64_t max_nodes_per_token = 0;  // node-limited routing M (0 = unlimited)
  int64_t gpus_per_node = 8;

  int64_t tokens_per_microbatch() const { return micro_batch * seq_len; }
  int64_t tokens_per_step() const { return global_batch * seq_len; }
};

// gpus > 0 fixes world = gpus and derives dp = gpus / (pp · tp); gpus = 0 takes dp from the
// config. Micro-batches: parallel.microbatches when set, else global_batch / (dp · micro_batch).
// Every size that does not divide is a UserError naming the fields.
Layout resolve_layout(const config::TridentConfig& config, int64_t gpus, int gpus_per_node);

// What one pipeline rank holds. Chunks are contiguous runs of main-model layers balanced by
// FLOPs (see chunk_first_layers); chunk 0 carries the embedding and the last chunk the final
// norm, the output head and the MTP modules.
struct StageContents {
  int64_t stage = 0;
  std::vector<int64_t> chunks;  // global chunk indices
  std::vector<int64_t> layers;  // main-model decoder layers
  bool embedding = false;
  bool head = false;  // model.norm + lm_head + every MTP module
  // The MTP modules read the shared embedding; a last stage without chunk 0 keeps a copy
  // (its gradient is summed with the first stage's, like tied embeddings).
  bool embedding_copy = false;
};

int64_t total_chunks(const Layout& layout);
// Cuts layers with costs `layer_cost` into contiguous chunks of at least one layer (chunk c on
// pipeline rank rank_of_chunk[c]; the last chunk also pays `last_extra`, the head and MTP),
// balancing the ranks' loads: equal shares of the total first, then single boundary moves
// while they lower the busiest rank's load (then the spread). Chunk c covers layers
// [first[c], first[c + 1]).
std::vector<int64_t> chunk_first_layers(const std::vector<double>& layer_cost,
                                        const std::vector<int64_t>& rank_of_chunk,
                                        double last_extra);
// FLOPs per token of each main-model layer and of the head + MTP modules, for the balance.
struct LayerCosts {
  std::vector<double> layers;
  double head_and_mtp = 0;
};
LayerCosts layer_costs(const models::ParameterRegistry& registry, int64_t seq_len);
// 1f1b, zb-h1: r, interleaved: r, r + pp, …; dualpipev: r and 2·pp − 1 − r.
std::vector<int64_t> chunks_of_stage(const Layout& layout, int64_t stage);
StageContents stage_contents(const Layout& layout, const models::ParameterRegistry& registry,
                             int64_t stage);

// Micro-batches whose activations a pipeline rank holds at its peak, in units of "one
// micro-batch through all of this rank's layers":
//   1f1b, zb-h1: min(pp − stage, m);  dualpipev: min(pp + 1, m);
//   interleaved: min(v·m, (v − 1)·pp + 2·(pp − 1 − stage) + 1) / v.
double inflight_microbatches(const Layout& layout, int64_t stage);

}  // namespace trident::models::planner
