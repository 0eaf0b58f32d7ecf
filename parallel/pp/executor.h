#pragma once
// The pipeline executor: runs one rank's action list of a Schedule (parallel/pp/schedule.h)
// against the real computation, moving activations and gradients between pipeline ranks with
// asynchronous point-to-point transfers.
//
// The split of responsibilities: the executor owns the order of actions, posts receives as
// early as the schedule allows, keeps sends in flight until their buffers may be reused, and
// hands each compute action its input. What a stage computes (embedding, a range of decoder
// layers, head and loss, MTP) is the StageCompute's business, so the same executor runs the
// model, a synthetic stage in tests, and a calibrated stand-in in the benchmark.
#include <cstdint>
#include <functional>
#include <memory>
#include <utility>
#include <vector>

#include "parallel/comm/communicator.h"
#include "parallel/pp/schedule.h"
#include "runtime/core/tensor.h"

namespace trident::parallel::pp {

// What one pipeline rank computes for the virtual stages it holds.
class StageCompute {
 public:
  virtual ~StageCompute() = default;
  // Shape of the activation that enters `stage` for `microbatch` (the output of stage − 1),
  // which is also the shape of the gradient that leaves it. Needed to post a receive before
  // the producer has run. Never asked for stage 0.
  virtual std::vector<int64_t> activation_shape(int microbatch, int stage) const = 0;
  // The element type of that activation (and of its gradient); receive buffers are allocated
  // with it.
  virtual DType activation_dtype(int /*microbatch*/, int /*stage*/) const { return DType::F32; }
  // The device the stages compute on, where receive buffers are allocated (the communicator
  // must reach it).
  virtual Device activation_device() const { return Device::CPU; }
  // F: `input` is the activation from stage − 1 (an undefined Tensor for stage 0). Returns the
  // stage output (ignored, may be undefined, on the last stage).
  virtual Tensor forward(int microbatch, int stage, const Tensor& input) = 0;
  // B: `output_grad` is the gradient of the stage output (undefined on the last stage, whose
  // loss starts the backward). Returns the gradient of the stage input (undefined for stage 0).
  virtual Tensor backward_input(int microbatch, int stage, const Tensor& output_grad) = 0;
  // W: the weight gradients of (microbatch, stage), accumulated into the parameters.
  virtual void backward_weight(int microbatch, int stage) = 0;
  // A fused B and its W (plain 1F1B) as one full backward, returning what backward_input
  // returns. Only called when fuses_backward() says so: a stage that can interleave the two
  // (each layer's weight gradients right after its input gradient) finishes gradient blocks
  // earlier than B-then-W would, so their reduction starts earlier. The executor then gives
  // the whole time to the B in its timeline and the W none.
  virtual bool fuses_backward() const { return false; }
  virtual Tensor backward_full(int microbatch, int stage, const Tensor& output_grad) {
    Tensor grad = backward_input(microbatch, stage, output_grad);
    backward_weight(microbatch, stage);
    return grad;
  }

  // DualPipe's F&B block: an F marked `overlapped` and the B that follows it in the list, run
  // as one call so that a stage can interleave them (one micro-batch's all-to-alls travelling
  // while the other's GEMMs run). Only called when pairs_forward_backward() says so; the
  // executor then takes both inputs before the call. Returns {forward's result, backward_input's
  // result}, which must be those of the two calls one after the other (the default).
  virtual bool pairs_forward_backward() const { return false; }
  virtual std::pair<Tensor, Tensor> forward_backward_input(int forward_microbatch,
                                                           int forward_stage, const Tensor& input,
                                                           int backward_microbatch,
                                                           int backward_stage,
                                                           const Tensor& output_grad) {
    Tensor out = forward(forward_microbatch, forward_stage, input);
    return {std::move(out), backward_input(backward_microbatch, backward_stage, output_grad)};
  }

  // Gradient blocks (ids of the caller's choosing) whose weight gradients an action of `kind`
  // on `stage` accumulates. The executor calls gradients_final(block) once the last such action
  // of the step on this rank has written its last contribution to the block, so the caller can
  // reduce those gradients while the rest of the step runs: at the latest right after that
  // action, earlier if the action reports the block done itself (block_written). The default:
  // no blocks, no calls.
  virtual std::vector<int> gradient_blocks(ActionKind /*kind*/, int /*stage*/) const { return {}; }
  virtual void gradients_final(int /*block*/) {}

  // Set by whoever runs the actions (the executor, or a wrapper forwarding to it): told of every
  // block_written call.
  void set_block_listener(std::function<void(int block)> listener) {
    block_listener_ = std::move(listener);
  }

 protected:
  // A compute action reports that it has written its last contribution to `block` (say, after
  // one layer's weight gradients inside a W of several layers), so a block that is final with
  // this action can be reduced before the action ends.
  void block_written(int block) {
    if (block_listener_) block_listener_(block);
  }

 private:
  std::function<void(int)> block_listener_;
};

// When one action ran on this rank (seconds since the start of run()).
struct ActionTiming {
  Action action;
  double start_s = 0.0;
  double end_s = 0.0;
};

struct ExecutorOptions {
  // How many receives may be posted ahead of the compute that consumes them (receive buffers
  // allocated and waiting for data). Receives are posted in list order; a larger window lets
  // data land earlier at the cost of one activation buffer per posted receive. Must be >= 1.
  int receive_window = 4;
};

struct ExecutorStats {
  double step_seconds = 0.0;
  double compute_seconds = 0.0;    // sum over F, B, W
  double recv_wait_seconds = 0.0;  // time blocked in receives the next compute needed
  double send_wait_seconds = 0.0;  // time blocked completing sends (buffer reuse, end of step)
  // Every action of this rank, in list order (timeline[i].action == the rank's i-th action).
  // A receive spans posting to the moment the data was seen complete; a send spans posting
  // to the moment the executor saw it complete (at the latest at the end of the step).
  std::vector<ActionTiming> timeline;
};

class PipelineExecutor {
 public:
  // `pp` is the pipeline group: its size must equal schedule.layout.ranks and its rank picks
  // the action list this executor runs (null for a schedule of one rank, which sends nothing).
  // The schedule must pass pp::check_schedule.
  PipelineExecutor(Schedule schedule, std::shared_ptr<parallel::comm::Communicator> pp,
                   ExecutorOptions options = {});

  // One training step of this rank's actions. Every F, B and W of the rank is called exactly
  // once per (microbatch, stage) it holds. Returns when every action, including the sends,
  // has completed.
  ExecutorStats run(StageCompute& compute);

  const Schedule& schedule() const { return schedule_; }

 private:
  Schedule schedule_;
  std::shared_ptr<parallel::comm::Communicator> pp_;
  ExecutorOptions options_;
};

// The point-to-point tag of the transfer across the boundary between stages `boundary` and
// boundary + 1 for `microbatch`, activation or gradient direction, inside
// comm::tags::kPipelineStreams. Unique while 2 · microbatches · (stages − 1) fits the range;
// beyond that tags repeat, which stays correct because both sides post each (sender, receiver,
// direction) stream in the same order.
int p2p_tag(int microbatch, int boundary, bool gradient, int num_stages);

}  // namespace trident::parallel::pp
