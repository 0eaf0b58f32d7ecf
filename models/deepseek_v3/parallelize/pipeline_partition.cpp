#include "models/deepseek_v3/parallelize/pipeline_partition.h"

#include <algorithm>
#include <numeric>
#include <string>

#include "runtime/core/error.h"

namespace trident::models::parallelize {

std::vector<int64_t> stage_layer_counts(int64_t layers, int stages,
                                        const std::vector<int64_t>& explicit_counts) {
  TRIDENT_CHECK(stages >= 1 && layers >= 0, "bad pipeline split request");
  if (!explicit_counts.empty()) {
    TRIDENT_USER_CHECK(static_cast<int>(explicit_counts.size()) == stages,
                       "parallel.stage_layers has ", explicit_counts.size(),
                       " entries but the schedule has ", stages,
                       " virtual stages (parallel.pp × chunks per rank)");
    for (const int64_t count : explicit_counts) {
      TRIDENT_USER_CHECK(count >= 0, "parallel.stage_layers: negative layer count ", count);
    }
    const int64_t total =
        std::accumulate(explicit_counts.begin(), explicit_counts.end(), int64_t{0});
    TRIDENT_USER_CHECK(total == layers, "parallel.stage_layers sums to ", total,
                       " but model.num_hidden_layers = ", layers);
    return explicit_counts;
  }
  std::vector<int64_t> counts(static_cast<size_t>(stages), layers / stages);
  // The first and last stages carry the embedding and the head: they get the remainder last.
  std::vector<int> order;
  for (int s = 1; s + 1 < stages; ++s) order.push_back(s);
  if (stages > 1) order.push_back(stages - 1);
  order.push_back(0);
  int64_t remainder = layers % stages;
  for (size_t i = 0; remainder > 0; ++i, --remainder) ++counts[static_cast<size_t>(order[i])];
  return counts;
}

PipelinePartition partition_model(int64_t layers, const parallel::pp::StageLayout& layout,
                                  const std::vector<int64_t>& explicit_counts) {
  PipelinePartition partition;
  partition.layout = layout;
  const int stages = layout.num_stages();
  const std::vector<int64_t> counts = stage_layer_counts(layers, stages, explicit_counts);
  int64_t next = 0;
  for (int s = 0; s < stages; ++s) {
    StageRange range;
    range.first_layer = next;
    next += counts[static_cast<size_t>(s)];
    range.last_layer = next;
    range.embedding = s == 0;
    range.head = s == stages - 1;
    partition.stages.push_back(range);
  }
  return partition;
}

models::PipelineHolding holding_of_rank(const PipelinePartition& partition, int rank,
                                        int64_t mtp_depth) {
  models::PipelineHolding holding;
  holding.embedding = false;
  holding.head = false;
  const int64_t layers = partition.stages.empty() ? 0 : partition.stages.back().last_layer;
  holding.layers.assign(static_cast<size_t>(layers), false);
  for (int s = 0; s < partition.layout.num_stages(); ++s) {
    if (partition.layout.rank_of(s) != rank) continue;
    const StageRange& range = partition.stages[static_cast<size_t>(s)];
    for (int64_t l = range.first_layer; l < range.last_layer; ++l) {
      holding.layers[static_cast<size_t>(l)] = true;
    }
    holding.embedding = holding.embedding || range.embedding || (range.head && mtp_depth > 0);
    holding.head = holding.head || range.head;
  }
  return holding;
}

parallel::pp::StageLayout layout_for_schedule(const config::ParallelConfig& parallel) {
  const int ranks = static_cast<int>(std::max<int64_t>(1, parallel.pp()));
  const std::string& name = parallel.schedule().empty() ? std::string("1f1b") : parallel.schedule();
  const auto& names = parallel::pp::schedule_names();
  std::string valid;
  for (const std::string& n : names) valid += (valid.empty() ? "" : ", ") + n;
  TRIDENT_USER_CHECK(std::find(names.begin(), names.end(), name) != names.end(),
                     "parallel.schedule = '", name, "' is not a schedule; valid: ", valid);
  const int64_t virtual_stages = std::max<int64_t>(1, parallel.virtual_stages());
  if (name == "interleaved") {
    TRIDENT_USER_CHECK(virtual_stages >= 2,
                       "parallel.schedule = 'interleaved' needs "
                       "parallel.virtual_stages ≥ 2, got ",
                       parallel.virtual_stages(), " (use '1f1b' for one chunk per rank)");
    return parallel::pp::StageLayout::interleaved(ranks, static_cast<int>(virtual_stages));
  }
  if (name == "dualpipev") {
    TRIDENT_USER_CHECK(virtual_stages == 1 || virtual_stages == 2,
                       "parallel.schedule = 'dualpipev' runs 2 chunks per rank (V shape); "
                       "parallel.virtual_stages = ",
                       parallel.virtual_stages(), " (leave it 0, or set 2)");
    return parallel::pp::StageLayout::v_shape(ranks);
  }
  TRIDENT_USER_CHECK(virtual_stages == 1, "parallel.schedule = '", name,
                     "' runs one chunk per rank; parallel.virtual_stages = ",
                     parallel.virtual_stages(), " needs parallel.schedule = 'interleaved'");
  return parallel::pp::StageLayout::linear(ranks);
}

PipelinePartition pipeline_partition(const config::ModelConfig& model,
                                     const config::ParallelConfig& parallel) {
  const std::vector<int64_t> counts(parallel.stage_layers().begin(), parallel.stage_layers().end());
  return partition_model(model.num_hidden_layers(), layout_for_schedule(parallel), counts);
}

}  // namespace trident::models::parallelize
