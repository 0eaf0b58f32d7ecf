#include "parallel/pp/schedule.h"

#include <algorithm>
#include <sstream>

#include "runtime/core/error.h"

namespace trident::parallel::pp {

const char* action_kind_name(ActionKind kind) {
  switch (kind) {
    case ActionKind::Forward:
      return "F";
    case ActionKind::BackwardInput:
      return "B";
    case ActionKind::BackwardWeight:
      return "W";
    case ActionKind::SendActivation:
      return "SendActivation";
    case ActionKind::RecvActivation:
      return "RecvActivation";
    case ActionKind::SendGrad:
      return "SendGrad";
    case ActionKind::RecvGrad:
      return "RecvGrad";
  }
  return "?";
}

bool is_compute(ActionKind kind) {
  return kind == ActionKind::Forward || kind == ActionKind::BackwardInput ||
         kind == ActionKind::BackwardWeight;
}
bool is_send(ActionKind kind) {
  return kind == ActionKind::SendActivation || kind == ActionKind::SendGrad;
}
bool is_recv(ActionKind kind) {
  return kind == ActionKind::RecvActivation || kind == ActionKind::RecvGrad;
}

Channel channel_of(int rank, const Action& a) {
  const bool gradient = a.kind == ActionKind::SendGrad || a.kind == ActionKind::RecvGrad;
  return is_send(a.kind) ? Channel{rank, a.peer, gradient} : Channel{a.peer, rank, gradient};
}

std::string to_string(const Action& action) {
  std::ostringstream out;
  out << action_kind_name(action.kind) << "(m=" << action.microbatch << ",s=" << action.stage;
  if (!is_compute(action.kind)) out << ",peer=" << action.peer;
  if (action.overlapped) out << ",overlapped";
  if (action.fused_weight) out << ",fused";
  out << ")";
  return out.str();
}

StageLayout StageLayout::linear(int ranks) { return {LayoutKind::Linear, ranks, 1}; }
StageLayout StageLayout::interleaved(int ranks, int chunks) {
  return {LayoutKind::Interleaved, ranks, chunks};
}
StageLayout StageLayout::v_shape(int ranks) { return {LayoutKind::VShape, ranks, 2}; }

int StageLayout::rank_of(int stage) const {
  TRIDENT_CHECK(stage >= 0 && stage < num_stages(), "stage ", stage);
  if (kind == LayoutKind::VShape && stage >= ranks) return 2 * ranks - 1 - stage;
  return stage % ranks;
}

int StageLayout::chunk_of(int stage) const {
  TRIDENT_CHECK(stage >= 0 && stage < num_stages(), "stage ", stage);
  return stage / ranks;
}

int StageLayout::stage_of(int rank, int chunk) const {
  TRIDENT_CHECK(rank >= 0 && rank < ranks && chunk >= 0 && chunk < chunks, "rank ", rank, " chunk ",
                chunk);
  if (kind == LayoutKind::VShape && chunk == 1) return 2 * ranks - 1 - rank;
  return chunk * ranks + rank;
}

const char* StageLayout::name() const {
  switch (kind) {
    case LayoutKind::Linear:
      return "linear";
    case LayoutKind::Interleaved:
      return "interleaved";
    case LayoutKind::VShape:
      return "v-shape";
  }
  return "?";
}

const std::vector<std::string>& schedule_names() {
  static const std::vector<std::string> names = {"1f1b", "interleaved", "zb-h1", "dualpipev"};
  return names;
}

namespace {
std::string joined_names() {
  std::string out;
  for (const std::string& name : schedule_names()) out += (out.empty() ? "" : ", ") + name;
  return out;
}
}  // namespace

int min_microbatches(const std::string& name, int pp) {
  if (name == "1f1b" || name == "zb-h1" || name == "interleaved") return 1;
  // DualPipeV's steady phase needs every rank to have started both chunks before its first
  // overlapped pair; with fewer than 2*pp micro-batches rank 0 never reaches it.
  if (name == "dualpipev") return 2 * pp;
  TRIDENT_USER_FAIL("--schedule: unknown schedule '", name, "'; valid: ", joined_names());
}

Schedule make_schedule(const ScheduleRequest& request) {
  TRIDENT_USER_CHECK(request.pp >= 1, "--pp must be at least 1, got ", request.pp);
  const int minimum = min_microbatches(request.name, request.pp);
  TRIDENT_USER_CHECK(request.microbatches >= minimum, "--microbatches: schedule '", request.name,
                     "' with pp=", request.pp, " needs at least ", minimum, " micro-batches, got ",
                     request.microbatches);
  if (request.name == "interleaved") {
    TRIDENT_USER_CHECK(request.virtual_stages >= 2,
                       "--virtual: schedule 'interleaved' needs at "
                       "least 2 virtual stages per rank, got ",
                       request.virtual_stages, " (use '1f1b' for one)");
    return make_interleaved(request.pp, request.virtual_stages, request.microbatches);
  }
  const int chunks = request.name == "dualpipev" ? 2 : 1;
  TRIDENT_USER_CHECK(request.virtual_stages == 1 || request.virtual_stages == chunks,
                     "--virtual: schedule '", request.name, "' fixes the chunks per rank at ",
                     chunks, ", got ", request.virtual_stages,
                     " (only 'interleaved' takes --virtual)");
  if (request.name == "1f1b") return make_1f1b(request.pp, request.microbatches);
  if (request.name == "zb-h1") return make_zb_h1(request.pp, request.microbatches);
  return make_dualpipev(request.pp, request.microbatches);
}

std::vector<std::vector<Action>> with_communication(
    const StageLayout& layout, const std::vector<std::vector<Action>>& compute) {
  const int last_stage = layout.num_stages() - 1;
  std::vector<std::vector<Action>> out(compute.size());
  for (size_t r = 0; r < compute.size(); ++r) {
    const int rank = static_cast<int>(r);
    const std::vector<Action>& list = compute[r];
    for (size_t i = 0; i < list.size();) {
      // A block runs as one unit: receive everything it needs first, send everything it
      // makes after. Blocks are an overlapped F with the B and W after it, a full backward
      // (a fused B and its W), and otherwise a single action.
      size_t end = i + 1;
      if (list[i].overlapped) end = i + 3;
      if (list[i].fused_weight) end = i + 2;
      end = std::min(end, list.size());
      for (size_t j = i; j < end; ++j) {
        const Action& a = list[j];
        if (a.kind == ActionKind::Forward && a.stage > 0 && layout.rank_of(a.stage - 1) != rank) {
          out[r].push_back(
              {ActionKind::RecvActivation, a.microbatch, a.stage, layout.rank_of(a.stage - 1)});
        }
        if (a.kind == ActionKind::BackwardInput && a.stage < last_stage &&
            layout.rank_of(a.stage + 1) != rank) {
          out[r].push_back(
              {ActionKind::RecvGrad, a.microbatch, a.stage, layout.rank_of(a.stage + 1)});
        }
      }
      for (size_t j = i; j < end; ++j) out[r].push_back(list[j]);
      for (size_t j = i; j < end; ++j) {
        const Action& a = list[j];
        if (a.kind == ActionKind::Forward && a.stage < last_stage &&
            layout.rank_of(a.stage + 1) != rank) {
          out[r].push_back(
              {ActionKind::SendActivation, a.microbatch, a.stage, layout.rank_of(a.stage + 1)});
        }
        if (a.kind == ActionKind::BackwardInput && a.stage > 0 &&
            layout.rank_of(a.stage - 1) != rank) {
          out[r].push_back(
              {ActionKind::SendGrad, a.microbatch, a.stage, layout.rank_of(a.stage - 1)});
        }
      }
      i = end;
    }
  }
  return out;
}

Schedule forward_only(const Schedule& training) {
  Schedule out = training;
  out.forward_only = true;
  for (std::vector<Action>& list : out.ranks) {
    std::vector<Action> kept;
    for (Action a : list) {
      if (a.kind != ActionKind::Forward && a.kind != ActionKind::SendActivation &&
          a.kind != ActionKind::RecvActivation) {
        continue;
      }
      a.overlapped = false;  // there is no backward left to overlap with
      kept.push_back(a);
    }
    list = std::move(kept);
  }
  return out;
}

}  // namespace trident::parallel::pp
