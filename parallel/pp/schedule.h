#pragma once
// Pipeline schedules as data. A schedule is, for every pipeline rank, the ordered list of
// actions that rank performs in one training step: compute (forward, backward for inputs,
// backward for weights) and point-to-point communication (send/receive of activations and
// of gradients). The executor runs these lists with the real model; the checker
// (parallel/pp/check.h) proves a list valid and the simulator (parallel/pp/simulate.h)
// replays it with a cost model. Nothing here touches MPI or the model.
#include <compare>
#include <string>
#include <vector>

namespace trident::parallel::pp {

enum class ActionKind {
  Forward,         // F: forward of one micro-batch through one virtual stage
  BackwardInput,   // B: gradient with respect to the stage input (what the previous stage needs)
  BackwardWeight,  // W: gradient with respect to the stage weights (nobody waits for it)
  SendActivation,  // the output of F(m, stage) to the rank holding stage + 1
  RecvActivation,  // the input of F(m, stage) from the rank holding stage - 1
  SendGrad,        // the input gradient made by B(m, stage) to the rank holding stage - 1
  RecvGrad,        // the output gradient B(m, stage) needs, from the rank holding stage + 1
};

const char* action_kind_name(ActionKind kind);
bool is_compute(ActionKind kind);
bool is_send(ActionKind kind);
bool is_recv(ActionKind kind);

struct Action {
  ActionKind kind = ActionKind::Forward;
  int microbatch = 0;
  // The virtual stage (model chunk) the action belongs to. A send carries the stage that
  // produced the data, a receive the stage that consumes it.
  int stage = 0;
  int peer = -1;  // the other rank of a send or receive; -1 for compute
  // Forward only: this F runs overlapped with the B and W that follow it on the same rank
  // (DualPipe's F&B pair: one forward chunk and one full backward chunk at the same time).
  bool overlapped = false;
  // BackwardInput only: its own W follows at once and the two form one full backward; the
  // gradient is sent after the W (plain 1F1B semantics). Without it the gradient leaves
  // right after the B and the W may run any time later (zero-bubble semantics).
  bool fused_weight = false;

  bool operator==(const Action&) const = default;
};

// "F(m=3,s=5)", "RecvGrad(m=0,s=2,peer=3)".
std::string to_string(const Action& action);

// A channel carries one kind of data (activations or gradients) from one rank to another, in
// order: the checker pairs sends with receives per channel, the simulator queues arrivals on it.
struct Channel {
  int from;
  int to;
  bool gradient;
  auto operator<=>(const Channel&) const = default;
};

// The channel a send or receive on `rank` uses.
Channel channel_of(int rank, const Action& a);

// Which rank holds each of the S = ranks x chunks virtual stages.
enum class LayoutKind {
  Linear,       // chunks = 1, stage s on rank s (1F1B, ZB-H1)
  Interleaved,  // stage s on rank s % ranks as its chunk s / ranks (interleaved 1F1B)
  VShape,       // chunks = 2, rank r holds stage r and stage 2*ranks-1-r (DualPipeV)
};

struct StageLayout {
  LayoutKind kind = LayoutKind::Linear;
  int ranks = 1;
  int chunks = 1;

  static StageLayout linear(int ranks);
  static StageLayout interleaved(int ranks, int chunks);
  static StageLayout v_shape(int ranks);

  int num_stages() const { return ranks * chunks; }
  int rank_of(int stage) const;
  int chunk_of(int stage) const;  // which of its rank's chunks the stage is
  int stage_of(int rank, int chunk) const;
  const char* name() const;
};

struct Schedule {
  std::string name;  // "1f1b", "interleaved", "zb-h1", "dualpipev"
  StageLayout layout;
  int microbatches = 0;
  std::vector<std::vector<Action>> ranks;  // ranks[r] = the ordered actions of rank r
  // Forward passes only (evaluation, scoring): no B, W or gradient transfers.
  bool forward_only = false;
};

struct ScheduleRequest {
  std::string name;
  int pp = 1;              // pipeline ranks
  int microbatches = 1;    // micro-batches per step
  int virtual_stages = 1;  // chunks per rank; only "interleaved" takes more than 1
};

// The schedule names make_schedule accepts, in the order `trident plan` lists them.
const std::vector<std::string>& schedule_names();

// The smallest micro-batch count the named schedule supports (UserError for an unknown name).
int min_microbatches(const std::string& name, int pp);

// Validates the request (UserError naming the flag at fault) and builds the schedule.
Schedule make_schedule(const ScheduleRequest& request);

// The generators. Each returns compute and communication actions for every rank.
Schedule make_1f1b(int pp, int microbatches);
Schedule make_interleaved(int pp, int virtual_stages, int microbatches);
Schedule make_zb_h1(int pp, int microbatches);
Schedule make_dualpipev(int pp, int microbatches);

// The forward passes of a training schedule in the same order on the same layout: its F
// actions and activation transfers. Dropping the backward only removes waits, so a valid
// training schedule gives a valid forward-only one.
Schedule forward_only(const Schedule& training);

// Adds the sends and receives a list of compute actions needs: a receive right before the
// compute that consumes remote data, a send right after the compute that produces data for
// another rank (after the whole F&B block for an overlapped pair, after the W of a full
// backward). Stages on the same rank hand data over without communication.
std::vector<std::vector<Action>> with_communication(
    const StageLayout& layout, const std::vector<std::vector<Action>>& compute);

}  // namespace trident::parallel::pp
