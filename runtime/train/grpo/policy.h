#pragma once
// The policy as GRPO uses it: the main model only (embedding, decoder layers, final norm,
// lm_head; no MTP), run on explicit token rows, with a backward that starts from an arbitrary
// gradient of the logits. The model's own forward_backward ends in a uniform cross-entropy;
// GRPO needs a per-token weight on log π(token), so this composes the model's public pieces.
// Everything here works on whatever slice of the parameters the store holds, so the same
// calls serve a sharded layout once the blocks do.
#include <cstdint>
#include <vector>

#include "models/deepseek_v3/model.h"

namespace trident::train::grpo {

// What one forward keeps for its backward.
struct PolicyForward {
  models::SequenceLayout layout;
  Tensor ids;  // [batch · seq] I32
  std::vector<models::DecoderLayerContext> layers;
  models::NormStep norm;
  models::LinearStep head;
  Tensor logits;  // [batch · seq, V]
};

// ids: [batch · seq] model inputs (row b, position s at b · seq + s).
void policy_forward(models::DeepSeekV3Model& model, const Tensor& ids, int64_t batch, int64_t seq,
                    PolicyForward& fwd);
// Backward from d loss / d logits [batch · seq, V]; gradients accumulate into model.params().
void policy_backward(models::DeepSeekV3Model& model, const Tensor& dlogits, PolicyForward& fwd);
// Final norm and lm_head on hidden states h [T, H] (used by decoding) -> logits [T, V].
Tensor policy_head_logits(models::DeepSeekV3Model& model, const Tensor& h);

// Filler work for ForwardLockstep (lockstep.h): a forward of one token whose result is dropped,
// and the same with a backward from zero logits gradients (which adds nothing to any gradient
// but runs the MoE layers' backward collectives).
void filler_forward(models::DeepSeekV3Model& model);
void filler_forward_backward(models::DeepSeekV3Model& model);

}  // namespace trident::train::grpo
