#pragma once
// The model's backward pass cut into stages, in the order it runs, so data parallelism can
// start reducing a gradient bucket as soon as every parameter in it has received its last
// contribution, while the rest of backward is still computing.
//
// Stages, in execution order (D = MTP depth, L = main-model layers):
//   0 … D−1      MTP depth D, D−1, …, 1 (its module, its shared-head norm)
//   D            main output head (model.norm, lm_head; lm_head also collects the MTP heads')
//   D+1 … D+L    decoder layers L−1, …, 0
//   D+L+1        embedding (it also collects every MTP depth's input embedding gradient)
// A parameter is final after its stage; shared ones (lm_head, the embedding) belong to the
// last stage that touches them.
#include <cstdint>
#include <functional>

#include "models/deepseek_v3/model.h"

namespace trident::parallel::dp {

int64_t num_backward_stages(const models::DeepSeekV3Model& model);
// The stage after which `spec`'s gradient receives no more contributions.
int64_t finishing_stage(const models::ParamSpec& spec, const models::DeepSeekV3Model& model);

// Runs the backward of one micro-batch exactly as DeepSeekV3Model::backward does (same
// operations in the same order, so gradients are bit-identical), calling `stage_done(s)`
// after stage s. Layer contexts are released as soon as their backward finishes.
void staged_backward(const models::DeepSeekV3Model& model, models::ModelContext& ctx,
                     const std::function<void(int64_t stage)>& stage_done);

}  // namespace trident::parallel::dp
