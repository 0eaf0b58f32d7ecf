#pragma once
// Generation through pipeline stages (pipeline_policy.h). Each stage keeps the MLA latent
// caches of its own layers. Per decode step stage 0 embeds the prompt (prefill) or the new
// tokens, every stage runs its layers with DecoderLayer::forward_decode and sends the hidden
// states on (one blocking message per stage boundary), the last stage applies norm and lm_head
// and samples with the same CounterRng streams as generate.h; the chosen tokens are broadcast
// over the pipeline group, so every stage appends the same tokens, sees the same stop and EOS
// decisions and returns the same completions. A decode step therefore costs pp − 1 activation
// messages of [rows, H] plus one broadcast of `rows` token ids, whatever the number of rows: all
// samples of the prompts of one length decode as one batch, which amortises the latency.
//
// Under expert parallelism each stage pairs its forwards with the same stage of the other EP
// ranks through `lockstep` (the EP group of this stage): every stage of a chain runs the same
// sequence of real forwards (the tokens reach every stage), so the stages' decisions agree, and
// fillers run on the stage's own layers only.
#include <vector>

#include "runtime/train/grpo/generate.h"
#include "runtime/train/grpo/pipeline_policy.h"

namespace trident::train::grpo {

// generate() for a staged policy: the same completions on every stage (step_logits with
// options.record_logits on the last stage only). Without pipelining it is generate().
std::vector<Completion> generate_staged(StagedPolicy& policy,
                                        const std::vector<GenerationRequest>& requests,
                                        const SamplingOptions& options,
                                        ForwardLockstep* lockstep = nullptr);

}  // namespace trident::train::grpo
