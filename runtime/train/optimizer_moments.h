#pragma once
// The AdamW moments an Optimizer holds, as the views a checkpoint writes and reads
// (runtime/io/checkpoint.h): the whole flat buffer, or its ZeRO-1 shards over dp and, with
// expert parallelism, over edp. Pretraining's and GRPO's checkpoints both use them.
#include "models/deepseek_v3/parameters.h"
#include "runtime/io/checkpoint.h"
#include "runtime/train/optimizer.h"

namespace trident::train {

// The moments this rank holds, aligned with `store` (the optimizer's model's parameters): one
// range without ZeRO-1, one range per shard segment under it. Loading fills exactly these.
io::MomentsView optimizer_moments(Optimizer& optimizer, const models::ParameterStore& store);

// The moments this rank writes: optimizer_moments less the last pipeline stage's copy of the
// embedding, whose moments live on stage 0's rank (optimizer.h); loading fills both copies'
// values.
io::MomentsView moments_to_save(Optimizer& optimizer, const models::ParameterStore& store);

}  // namespace trident::train
