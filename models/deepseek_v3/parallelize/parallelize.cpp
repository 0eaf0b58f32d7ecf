#include "models/deepseek_v3/parallelize/parallelize.h"

#include <algorithm>

#include "models/deepseek_v3/parallelize/expert_parallel_moe.h"
#include "models/deepseek_v3/parallelize/token_split_moe.h"
#include "runtime/core/error.h"

namespace trident::models::parallelize {

ExpertParallelSetup expert_parallel_setup(const config::ModelConfig& model,
                                          const config::ParallelConfig& parallel,
                                          const parallel::ParallelContext& context) {
  using parallel::MeshAxis;
  ExpertParallelSetup setup;
  const int64_t ep = context.size(MeshAxis::Ep);
  const int64_t experts = model.n_routed_experts();
  if (parallel.max_nodes_per_token() > 0) {
    // The routing mask is part of the model's maths, so it follows the configured layout (and
    // validation requires parallel.ranks_per_node with a node limit): a one-rank reference
    // given the same parallel config routes exactly like the expert-parallel run.
    setup.experts_per_node =
        experts_per_node(experts, std::max<int64_t>(1, parallel.ep()),
                         std::max<int64_t>(1, parallel.etp()), parallel.ranks_per_node());
    setup.max_nodes_per_token = parallel.max_nodes_per_token();
  }
  if (ep == 1) return setup;
  setup.shards.ep_rank = context.rank(MeshAxis::Ep);
  setup.shards.ep_size = ep;
  ExpertParallelOptions options;
  options.dispatcher.experts = experts;
  options.dispatcher.chunks = std::max<int64_t>(1, parallel.a2a_chunks());
  options.dispatcher.capacity_factor = parallel.capacity_factor();
  setup.engine = std::make_shared<ExpertParallelMoe>(context.shared_group(MeshAxis::Ep), options);
  if (context.size(MeshAxis::Tp) > 1) {
    // The TP ranks see the same tokens: each dispatches its own share (token_split_moe.h).
    setup.engine = std::make_shared<TokenSplitMoe>(std::move(setup.engine),
                                                   context.shared_group(MeshAxis::Tp));
  }
  return setup;
}

std::unique_ptr<DeepSeekV3Model> build_model(const config::ModelConfig& model,
                                             const config::ParallelConfig& parallel, uint64_t seed,
                                             const parallel::ParallelContext& context,
                                             const PipelineHolding& holding,
                                             const Precision& precision, Device device) {
  ModelParallel layout;
  layout.tp = context.tp();
  layout.tp_rank = context.rank(parallel::MeshAxis::Tp);
  layout.tp_size = context.size(parallel::MeshAxis::Tp);
  layout.pipeline = holding;
  layout.precision = precision;
  layout.device = device;
  return std::make_unique<DeepSeekV3Model>(model, seed, layout,
                                           expert_parallel_setup(model, parallel, context));
}

}  // namespace trident::models::parallelize
