#pragma once
// The model part of `trident plan`: `trident plan --config NAME --gpus N [--set ...]` prints the
// parameter counts, memory per pipeline rank, FLOPs, communication volumes, step time, tokens/s
// and GPU-hours per trillion tokens (models/deepseek_v3/planner, docs/planner.md), and refuses
// a layout whose busiest rank does not fit in HBM. `--sweep 64,128,...` evaluates several
// cluster sizes and writes one CSV row per size (the configured layout and the best layout
// found).
#include "launch/cli.h"

namespace trident::launch {

int run_model_plan(const launch::Args& args);

}  // namespace trident::launch
