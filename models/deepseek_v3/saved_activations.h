#pragma once
// What a layer's forward keeps for its backward, kept in bf16 under bf16 activations.
//
// The ops compute in fp32 buffers and round their outputs to bf16 values (round_activations), so
// every saved activation already holds values a bf16 tensor holds. Once a layer's forward is
// done, keep_saved_in_bf16 replaces each saved fp32 handle by a bf16 tensor (one per distinct
// buffer: handles that view the same elements share it) and drops the fp32 one; the backward
// ops widen them again (ops/ops.h). Nothing changes in the arithmetic, only the memory: the
// saved activations take the 2 bytes per element the planner counts for them.
//
// What stays fp32 by design: RMSNorm's rstd, attention's log-sum-exp, the router's scores and
// gate weights (docs/precision.md), and the output gradients backward_input keeps for
// backward_weight.
#include <vector>

#include "models/deepseek_v3/decoder_layer.h"
#include "models/deepseek_v3/mtp.h"

namespace trident::models {

// Every saved activation handle of a layer's context (undefined ones included), the routed
// experts' engine state among them.
std::vector<Tensor*> saved_activations(DecoderLayerContext& ctx);
std::vector<Tensor*> saved_activations(MtpContext& ctx);

// Under activations = BF16, every defined fp32 handle of `saved` becomes a bf16 tensor of the same
// shape; handles on the same elements share one. Nothing under F32.
void keep_in_bf16(DType activations, const std::vector<Tensor*>& saved);

}  // namespace trident::models
