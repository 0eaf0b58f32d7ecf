#include "parallel/pp/executor.h"

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <initializer_list>
#include <map>
#include <memory>
#include <string>
#include <utility>

#include "parallel/comm/tags.h"
#include "parallel/pp/check.h"
#include "runtime/core/error.h"
#include "runtime/core/stream.h"

namespace trident::parallel::pp {

int p2p_tag(int microbatch, int boundary, bool gradient, int num_stages) {
  // The range's size is even, so the low bit (the direction) survives the wrap-around.
  constexpr comm::tags::TagRange kRange = comm::tags::kPipelineStreams;
  const int64_t boundaries = std::max(num_stages - 1, 1);
  const int64_t stream = static_cast<int64_t>(microbatch) * boundaries + boundary;
  return kRange.first + static_cast<int>((stream * 2 + (gradient ? 1 : 0)) % kRange.count);
}

PipelineExecutor::PipelineExecutor(Schedule schedule,
                                   std::shared_ptr<parallel::comm::Communicator> pp,
                                   ExecutorOptions options)
    : schedule_(std::move(schedule)), pp_(std::move(pp)), options_(options) {
  const int ranks = pp_ != nullptr ? pp_->size() : 1;
  TRIDENT_CHECK(ranks == schedule_.layout.ranks, "pipeline group has ", ranks,
                " ranks but schedule '", schedule_.name, "' is laid out for ",
                schedule_.layout.ranks);
  TRIDENT_CHECK(options_.receive_window >= 1, "receive_window must be at least 1, got ",
                options_.receive_window);
  const CheckResult check = check_schedule(schedule_);
  TRIDENT_CHECK(check.ok, "schedule '", schedule_.name, "' is invalid: ", check.message);
}

namespace {

using Clock = std::chrono::steady_clock;

// Identifies a piece of data a compute action consumes: the input of F(m, s) or the output
// gradient B(m, s) needs.
struct DataKey {
  int microbatch;
  int stage;
  bool gradient;
  auto operator<=>(const DataKey&) const = default;
};

// One point-to-point transfer as the pp.comm stream sees it: the item that posts it writes
// `work`; the host reads `work` only after an event recorded behind that item completed.
struct Transfer {
  Tensor buffer;  // kept alive until the transfer completes
  parallel::comm::WorkHandle work;
};

struct PostedRecv {
  std::shared_ptr<Transfer> transfer;
  size_t timeline_index = 0;
};

struct InFlightSend {
  std::shared_ptr<Transfer> transfer;
  Event posted;  // behind the item that posted the send
  size_t timeline_index = 0;
};

// Test only: TRIDENT_TEST_DROP_PP_WAIT=1 drops the wait for a receive's completion: the host
// synchronizes with the item that posted it and reads the buffer at once, so tests/layouts can
// show race hunting turning the missing wait into a failure.
bool drop_receive_wait_for_test() {
  static const bool drop = [] {
    const char* value = std::getenv("TRIDENT_TEST_DROP_PP_WAIT");
    return value != nullptr && std::string(value) == "1";
  }();
  return drop;
}

std::string transfer_name(const char* what, const Action& a) {
  return std::string("pp ") + what + " " + to_string(a);
}

// One run() call: the state of this rank's walk through its list.
class RankRun {
 public:
  RankRun(const Schedule& schedule, std::shared_ptr<parallel::comm::Communicator> comm,
          StageCompute& compute, const ExecutorOptions& options)
      : schedule_(schedule),
        comm_(std::move(comm)),
        streams_(device_streams()),
        fence_({&streams_.pp_comm}),
        compute_(compute),
        options_(options),
        rank_(comm_ != nullptr ? comm_->rank() : 0),
        list_(schedule.ranks.at(static_cast<size_t>(rank_))),
        last_stage_(schedule.layout.num_stages() - 1),
        start_(Clock::now()) {
    stats_.timeline.resize(list_.size());
    for (size_t i = 0; i < list_.size(); ++i) stats_.timeline[i].action = list_[i];
    plan_gradient_reports();
    plan_pairs();
  }

  ExecutorStats run() {
    for (size_t i = 0; i < list_.size(); ++i) {
      const Action& a = list_[i];
      if (is_recv(a.kind)) {
        // At the latest a receive is posted at its place in the list; usually earlier.
        post_receives_through(i);
      } else if (is_send(a.kind)) {
        send(i);
      } else if (paired_[i]) {
        continue;  // the B of an F&B block: it ran with its F
      } else if (const size_t b = backward_of_[i]; b != kNone) {
        // An F&B block: both inputs are needed before it starts (the B's receive lies between
        // the two in the list).
        post_receives_ahead(b);
        run_forward_backward(i, b);
        release_completed_sends();
      } else {
        // Keep the window of receives ahead of this compute posted, so their data can land
        // while it runs.
        post_receives_ahead(i);
        // A fused B runs with its W (the next action, by the checker) when the stage fuses.
        const bool fused =
            a.kind == ActionKind::BackwardInput && a.fused_weight && compute_.fuses_backward();
        run_compute(i, fused);
        if (fused) ++i;
        release_completed_sends();
      }
    }
    const double drain_start = now();
    complete_sends();
    stats_.send_wait_seconds += now() - drain_start;
    TRIDENT_CHECK(posted_.empty(), "rank ", rank_, ": ", posted_.size(),
                  " received tensors were never consumed");
    TRIDENT_CHECK(local_.empty(), "rank ", rank_, ": ", local_.size(),
                  " same-rank hand-overs were never consumed");
    stats_.step_seconds = now();
    return std::move(stats_);
  }

 private:
  double now() const { return std::chrono::duration<double>(Clock::now() - start_).count(); }

  // For each compute action, the gradient blocks it is the last action of the step to touch.
  void plan_gradient_reports() {
    final_after_.resize(list_.size());
    std::map<int, size_t> last_toucher;
    for (size_t i = 0; i < list_.size(); ++i) {
      if (!is_compute(list_[i].kind)) continue;
      for (const int block : compute_.gradient_blocks(list_[i].kind, list_[i].stage)) {
        last_toucher[block] = i;
      }
    }
    for (const auto& [block, index] : last_toucher) final_after_[index].push_back(block);
  }

  // DualPipe's F&B blocks, when the stage pairs them: an overlapped F and the first compute
  // action after it, a B (the generator's block: F, then the full backward of another chunk).
  void plan_pairs() {
    backward_of_.assign(list_.size(), kNone);
    paired_.assign(list_.size(), false);
    if (!compute_.pairs_forward_backward()) return;
    for (size_t i = 0; i < list_.size(); ++i) {
      if (list_[i].kind != ActionKind::Forward || !list_[i].overlapped) continue;
      size_t j = i + 1;
      while (j < list_.size() && !is_compute(list_[j].kind)) ++j;
      if (j == list_.size() || list_[j].kind != ActionKind::BackwardInput) continue;
      backward_of_[i] = j;
      paired_[j] = true;
    }
  }

  static DataKey data_key_of(const Action& a) {
    // A receive names the consuming stage.
    return DataKey{a.microbatch, a.stage, a.kind == ActionKind::RecvGrad};
  }

  // The boundary between stage b and b + 1 that a transfer crosses.
  static int boundary_of(const Action& a) {
    switch (a.kind) {
      case ActionKind::SendActivation:
        return a.stage;
      case ActionKind::RecvActivation:
        return a.stage - 1;
      case ActionKind::SendGrad:
        return a.stage - 1;
      case ActionKind::RecvGrad:
        return a.stage;
      default:
        TRIDENT_CHECK(false, "not a transfer: ", to_string(a));
    }
    return 0;
  }

  int tag_of(const Action& a) const {
    const bool gradient = a.kind == ActionKind::SendGrad || a.kind == ActionKind::RecvGrad;
    return p2p_tag(a.microbatch, boundary_of(a), gradient, schedule_.layout.num_stages());
  }

  // The activation entering `stage` (and the gradient leaving it) for `microbatch`, filled by
  // the pp.comm stream (NaN until then while streams hunt races).
  Tensor new_boundary_buffer(int microbatch, int stage) const {
    return empty_stream_target(compute_.activation_shape(microbatch, stage),
                               compute_.activation_dtype(microbatch, stage),
                               compute_.activation_device());
  }

  // Queued on pp.comm: the receive is posted there, and completed there when its consumer
  // needs it (take_input).
  void post_receive(size_t index) {
    const Action& a = list_[index];
    // The gradient received by B(m, s) is shaped like the input of stage s + 1.
    const int boundary_stage = a.kind == ActionKind::RecvGrad ? a.stage + 1 : a.stage;
    PostedRecv posted;
    posted.transfer = std::make_shared<Transfer>();
    posted.transfer->buffer = new_boundary_buffer(a.microbatch, boundary_stage);
    posted.timeline_index = index;
    stats_.timeline[index].start_s = now();
    streams_.pp_comm.enqueue(transfer_name("post", a), [transfer = posted.transfer, comm = comm_,
                                                        peer = a.peer, tag = tag_of(a)] {
      transfer->work = comm->recv(transfer->buffer, peer, tag);
    });
    const bool inserted = posted_.emplace(data_key_of(a), std::move(posted)).second;
    TRIDENT_CHECK(inserted, "rank ", rank_, ": ", to_string(a), " received twice");
  }

  // Posts, in list order, every receive up to and including list position `index`.
  void post_receives_through(size_t index) {
    while (next_recv_ <= index && next_recv_ < list_.size()) {
      if (is_recv(list_[next_recv_].kind)) post_receive(next_recv_);
      ++next_recv_;
    }
  }

  // Posts receives ahead of the compute at `index` while fewer than the window wait unused.
  void post_receives_ahead(size_t index) {
    post_receives_through(index);
    while (next_recv_ < list_.size() &&
           static_cast<int>(posted_.size()) < options_.receive_window) {
      if (is_recv(list_[next_recv_].kind)) post_receive(next_recv_);
      ++next_recv_;
    }
  }

  // The input a compute action needs: received, handed over on this rank, or none.
  Tensor take_input(const Action& a) {
    if (a.kind == ActionKind::BackwardWeight) return Tensor();
    const bool gradient = a.kind == ActionKind::BackwardInput;
    const bool has_input = gradient ? a.stage < last_stage_ : a.stage > 0;
    if (!has_input) return Tensor();
    const DataKey key{a.microbatch, a.stage, gradient};
    if (auto it = local_.find(key); it != local_.end()) {
      Tensor t = std::move(it->second);
      local_.erase(it);
      return t;
    }
    auto it = posted_.find(key);
    TRIDENT_CHECK(it != posted_.end(), "rank ", rank_, ": ", to_string(a),
                  " has no input: neither received nor handed over on this rank");
    const double wait_start = now();
    // The data is the host's once the stream has seen the receive complete: an item behind the
    // post that waits for it, and an event behind that item.
    if (!drop_receive_wait_for_test()) {
      streams_.pp_comm.enqueue(transfer_name("complete", a),
                               [transfer = it->second.transfer] { transfer->work->wait(); });
    }
    streams_.pp_comm.record().synchronize();
    const double wait_end = now();
    stats_.recv_wait_seconds += wait_end - wait_start;
    stats_.timeline[it->second.timeline_index].end_s = wait_end;
    Tensor t = std::move(it->second.transfer->buffer);
    posted_.erase(it);
    return t;
  }

  void check_boundary_tensor(const Tensor& t, const Action& a, int boundary_stage) const {
    TRIDENT_CHECK(t.defined(), "rank ", rank_, ": ", to_string(a),
                  " returned no tensor but its result goes to stage ", boundary_stage);
    TRIDENT_CHECK(t.shape() == compute_.activation_shape(a.microbatch, boundary_stage), "rank ",
                  rank_, ": ", to_string(a), " returned ", t.describe(), ", but activation_shape(",
                  a.microbatch, ", ", boundary_stage, ") differs");
  }

  // Runs `body` (the compute of the actions at `indices`), reporting each block that is final
  // with those actions as soon as the stage says it wrote it, and the rest right after.
  template <typename Body>
  void reporting_final_blocks(std::initializer_list<size_t> indices, Body&& body) {
    std::vector<int> final_here;
    for (const size_t i : indices) {
      final_here.insert(final_here.end(), final_after_[i].begin(), final_after_[i].end());
    }
    compute_.set_block_listener([&final_here, this](int block) {
      const auto it = std::find(final_here.begin(), final_here.end(), block);
      if (it == final_here.end()) return;
      final_here.erase(it);
      compute_.gradients_final(block);
    });
    body();
    compute_.set_block_listener(nullptr);
    for (const int block : final_here) compute_.gradients_final(block);
  }

  // The compute action at `index`; with `fused`, a B together with its W at index + 1.
  void run_compute(size_t index, bool fused) {
    const Action& a = list_[index];
    const Tensor input = take_input(a);
    ActionTiming& timing = stats_.timeline[index];
    const auto body = [&] {
      timing.start_s = now();
      switch (a.kind) {
        case ActionKind::Forward:
          keep_forward_output(a, compute_.forward(a.microbatch, a.stage, input));
          break;
        case ActionKind::BackwardInput:
          keep_input_gradient(a, fused ? compute_.backward_full(a.microbatch, a.stage, input)
                                       : compute_.backward_input(a.microbatch, a.stage, input));
          break;
        case ActionKind::BackwardWeight:
          compute_.backward_weight(a.microbatch, a.stage);
          break;
        default:
          TRIDENT_CHECK(false, "not a compute action: ", to_string(a));
      }
      timing.end_s = now();
    };
    if (fused) {
      reporting_final_blocks({index, index + 1}, body);
    } else {
      reporting_final_blocks({index}, body);
    }
    stats_.compute_seconds += timing.end_s - timing.start_s;
    if (fused) {  // the W ran inside the B
      stats_.timeline[index + 1].start_s = timing.end_s;
      stats_.timeline[index + 1].end_s = timing.end_s;
    }
  }

  // F(m, s)'s output: handed over on this rank or kept for its send.
  void keep_forward_output(const Action& a, Tensor out) {
    if (a.stage == last_stage_) return;
    check_boundary_tensor(out, a, a.stage + 1);
    if (schedule_.layout.rank_of(a.stage + 1) == rank_) {
      local_.emplace(DataKey{a.microbatch, a.stage + 1, false}, std::move(out));
    } else {
      produced_.emplace(DataKey{a.microbatch, a.stage, false}, std::move(out));
    }
  }

  // B(m, s)'s input gradient, likewise.
  void keep_input_gradient(const Action& a, Tensor grad) {
    if (a.stage == 0) return;
    check_boundary_tensor(grad, a, a.stage);
    if (schedule_.layout.rank_of(a.stage - 1) == rank_) {
      local_.emplace(DataKey{a.microbatch, a.stage - 1, true}, std::move(grad));
    } else {
      produced_.emplace(DataKey{a.microbatch, a.stage, true}, std::move(grad));
    }
  }

  // The F at `f` and the B at `b` as one call; both actions' timeline entries span it.
  void run_forward_backward(size_t f, size_t b) {
    const Action& fa = list_[f];
    const Action& ba = list_[b];
    const Tensor input = take_input(fa);
    const Tensor output_grad = take_input(ba);
    ActionTiming& timing = stats_.timeline[f];
    reporting_final_blocks({f, b}, [&] {
      timing.start_s = now();
      auto [out, grad] = compute_.forward_backward_input(fa.microbatch, fa.stage, input,
                                                         ba.microbatch, ba.stage, output_grad);
      keep_forward_output(fa, std::move(out));
      keep_input_gradient(ba, std::move(grad));
      timing.end_s = now();
    });
    stats_.compute_seconds += timing.end_s - timing.start_s;
    stats_.timeline[b].start_s = timing.start_s;
    stats_.timeline[b].end_s = timing.end_s;
  }

  void send(size_t index) {
    const Action& a = list_[index];
    // A send carries the producing stage: the output of F(m, s) or the input gradient of
    // B(m, s). With fused_weight the list already places the gradient's send after the W.
    const DataKey key{a.microbatch, a.stage, a.kind == ActionKind::SendGrad};
    auto it = produced_.find(key);
    TRIDENT_CHECK(it != produced_.end(), "rank ", rank_, ": ", to_string(a),
                  " before the compute that produces its data");
    InFlightSend s;
    s.transfer = std::make_shared<Transfer>();
    s.transfer->buffer = std::move(it->second);
    produced_.erase(it);
    s.timeline_index = index;
    stats_.timeline[index].start_s = now();
    // The data was produced on the host and on the compute stream: the send waits for both.
    streams_.pp_comm.wait(streams_.compute.record());
    streams_.pp_comm.enqueue(transfer_name("post", a),
                             [transfer = s.transfer, comm = comm_, peer = a.peer, tag = tag_of(a)] {
                               transfer->work = comm->send(transfer->buffer, peer, tag);
                             });
    s.posted = streams_.pp_comm.record();
    sends_.push_back(std::move(s));
  }

  // Every send of the step delivered: completed on the stream, then the stream synchronized.
  void complete_sends() {
    if (sends_.empty()) return;
    std::vector<std::shared_ptr<Transfer>> transfers;
    for (const InFlightSend& s : sends_) transfers.push_back(s.transfer);
    streams_.pp_comm.enqueue("pp complete the step's sends", [transfers] {
      for (const std::shared_ptr<Transfer>& transfer : transfers) transfer->work->wait();
    });
    fence_.synchronize();
    const double done = now();
    for (const InFlightSend& s : sends_) stats_.timeline[s.timeline_index].end_s = done;
    sends_.clear();
  }

  // Frees the buffers of sends that have finished (without blocking), so in-flight memory
  // stays bounded by what the link has not yet delivered.
  void release_completed_sends() {
    for (size_t i = 0; i < sends_.size();) {
      if (sends_[i].posted.query() && sends_[i].transfer->work->test()) {
        stats_.timeline[sends_[i].timeline_index].end_s = now();
        sends_[i] = std::move(sends_.back());
        sends_.pop_back();
      } else {
        ++i;
      }
    }
  }

  const Schedule& schedule_;
  std::shared_ptr<parallel::comm::Communicator> comm_;  // null for one rank (nothing is sent)
  DeviceStreams& streams_;
  // No item of this run is left queued on pp.comm when it ends (the items own what they touch,
  // so this only keeps one step's transfers out of the next).
  StreamFence fence_;
  StageCompute& compute_;
  const ExecutorOptions& options_;
  const int rank_;
  const std::vector<Action>& list_;
  const int last_stage_;
  const Clock::time_point start_;

  ExecutorStats stats_;
  size_t next_recv_ = 0;                  // the first list position not yet scanned for receives
  std::map<DataKey, PostedRecv> posted_;  // receives posted, data not yet consumed
  std::map<DataKey, Tensor> local_;       // same-rank hand-overs, keyed by the consumer
  std::map<DataKey, Tensor> produced_;    // results waiting for their send, keyed by producer
  std::vector<InFlightSend> sends_;
  std::vector<std::vector<int>> final_after_;  // per action: blocks final once it has run
  static constexpr size_t kNone = static_cast<size_t>(-1);
  std::vector<size_t> backward_of_;  // per overlapped F: the list position of its B, or kNone
  std::vector<bool> paired_;         // per action: a B that runs inside its F&B block
};

}  // namespace

ExecutorStats PipelineExecutor::run(StageCompute& compute) {
  RankRun run(schedule_, pp_, compute, options_);
  return run.run();
}

}  // namespace trident::parallel::pp
