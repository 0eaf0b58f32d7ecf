#pragma once
// The cost model behind `trident plan --config`: for a TridentConfig and a GPU count it
// predicts, per pipeline rank, the parameters held, the memory needed (and whether it fits in
// HBM), the FLOPs, the communication volumes and the time of one training step, and from them
// tokens/s and GPU-hours per trillion tokens. Formulas: docs/planner.md.
//
// Ranks that differ only in their dp, tp, ep or etp coordinate hold the same amount of
// everything (experts are spread evenly, tokens balanced), so a plan keeps one StagePlan per
// pipeline rank; plan_for_rank() maps any world rank onto it, so a rank's measured peak
// (Allocator::stats().peak_bytes) can be compared with its prediction.
#include <cstdint>
#include <string>
#include <vector>

#include "models/deepseek_v3/planner/cost.h"
#include "models/deepseek_v3/planner/hardware.h"
#include "models/deepseek_v3/planner/layout.h"
#include "models/deepseek_v3/planner/memory.h"
#include "models/deepseek_v3/planner/rank_parameters.h"
#include "models/deepseek_v3/registry.h"
#include "runtime/config/trident.pb.h"

namespace trident::models::planner {

struct StagePlan {
  StageContents contents;
  RankParameters params;
  MemoryBreakdown memory;
  FlopsPerToken flops;  // this rank's layers, per token, before the TP split
  MicroBatchComm comm;
  StageTimes times;
};

// Bytes one rank moves per step.
struct StepComm {
  double a2a = 0;                // all-to-all, dispatch + combine, forward + backward (IB + NVLink)
  double a2a_ib = 0;             // … of which over InfiniBand
  double p2p = 0;                // pipeline sends, forward + backward
  double dp_reduce_scatter = 0;  // gradients (ring: (n − 1)/n of the buffer)
  double dp_all_gather = 0;      // updated weights after the ZeRO-1 step
};

struct StepTime {
  double compute = 0;       // m · (F + B + W) of the slowest rank, no communication
  double microbatches = 0;  // m · (F' + B') with the all-to-all and p2p
  double bubble = 0;
  double dp_exposed = 0;  // gradient reduction not hidden behind the last backward
  double optimizer = 0;   // AdamW over the rank's optimizer shard (HBM-bound)
  double total() const { return microbatches + bubble + dp_exposed + optimizer; }
};

struct Plan {
  Layout layout;
  HardwareSpec hardware;
  PlanOptions options;
  models::ParameterCounts counts;
  FlopsPerToken flops_per_token;  // whole model (main + MTP)
  std::vector<StagePlan> stages;  // one per pipeline rank
  int64_t peak_stage = 0;         // the rank with the most memory
  int64_t slowest_stage = 0;      // the rank with the longest micro-batch
  StepComm comm;                  // of the slowest rank
  StepTime step;
  double tokens_per_s = 0;
  double gpu_hours_per_trillion_tokens = 0;
  double mfu = 0;  // model FLOPs / (world · peak · step time)
  bool fits = true;
};

// gpus = 0 takes the world size from parallel.{pp,dp,tp}.
Plan make_plan(const config::TridentConfig& config, int64_t gpus, const HardwareSpec& hardware,
               const PlanOptions& options = {});
// The same with a registry built once (sweeps evaluate many layouts of one model).
Plan make_plan(const config::TridentConfig& config, const models::ParameterRegistry& registry,
               const Layout& layout, const HardwareSpec& hardware, const PlanOptions& options);

// The pipeline rank of a world rank (rank = ((pp · DP) + dp) · TP + tp) and its prediction.
int64_t stage_of_rank(const Layout& layout, int64_t rank);
const StagePlan& plan_for_rank(const Plan& plan, int64_t rank);

// UserError when the peak rank does not fit in usable HBM, naming the largest parts.
void check_fits(const Plan& plan);
// "rank 0 needs 96.3 GiB > 73.6 GiB usable HBM (0.92 × 80 GiB): …"
std::string memory_summary(const Plan& plan, int64_t stage);

}  // namespace trident::models::planner
