#pragma once
// DeepSeek-V3 on a parallel layout: how one rank's part of the model is built from the run's
// parallel context, the way torchtitan's models/<model>/infra/parallelize applies the generic
// distributed package to a plain model. The model itself only knows a TP group and a routed-
// experts engine; this file decides what they are:
//   - tensor parallelism splits attention heads, dense and shared-expert FFNs and the
//     vocabulary over the context's tp group;
//   - expert parallelism places the routed experts over the ep group (ExpertParallelMoe), and
//     when tp > 1 each TP rank first takes its own share of the tokens (TokenSplitMoe);
//   - pipeline parallelism allocates only the stages the rank holds (`holding`).
// Every slice is initialised to exactly its part of the one-rank model, so a layout starts from
// the weights one rank starts from.
#include <cstdint>
#include <memory>

#include "models/deepseek_v3/model.h"
#include "parallel/context.h"
#include "runtime/config/trident.pb.h"

namespace trident::models::parallelize {

// This rank's part of expert parallelism: its experts and the engine over the context's ep
// group (wrapped in the token split over tp when tp > 1), with node-limited routing
// (parallel.max_nodes_per_token over parallel.ranks_per_node). For a context whose ep group has
// one rank it is the single-rank model with the same routing: the reference of the invariant.
ExpertParallelSetup expert_parallel_setup(const config::ModelConfig& model,
                                          const config::ParallelConfig& parallel,
                                          const parallel::ParallelContext& context);

// This rank's model: its TP slices, its experts and the stages of `holding`, initialised from
// `seed`, computing in `precision`, its parameters on `device`.
std::unique_ptr<DeepSeekV3Model> build_model(const config::ModelConfig& model,
                                             const config::ParallelConfig& parallel, uint64_t seed,
                                             const parallel::ParallelContext& context,
                                             const PipelineHolding& holding = {},
                                             const Precision& precision = {},
                                             Device device = Device::CPU);

}  // namespace trident::models::parallelize
