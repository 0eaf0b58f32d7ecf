// The pipeline executor under real mpirun (pp = the world size) for every schedule, with a
// synthetic stage whose tensors encode their micro-batch and stage:
//   stage s:  y = w_s * x + b_s (element-wise),  stage 0 input x(m)[i] = m + 1 + i / 64,
//   loss per micro-batch on the last stage: 0.5 * |y|^2, so the gradient entering the last B
//   is y itself.
// Every rank knows all weights, so it replays the whole chain serially and checks each input
// and each output gradient it is handed against the value for exactly that (micro-batch,
// stage): a tensor routed to the wrong micro-batch or stage fails. The accumulated weight
// gradients are checked against the serial sums. The stage also records every call and fails
// on a second F/B/W of the same (micro-batch, stage) or one that runs before its dependency.
#include <gtest/gtest.h>

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "parallel/comm/delayed_link.h"
#include "parallel/comm/mpi_backend.h"
#include "parallel/pp/executor.h"
#include "parallel/pp/schedule.h"
#include "tests/support/mpi_helpers.h"

namespace trident::parallel::pp {
namespace {

using trident::testing::world_size;

std::vector<float> stage_weight(int stage, int64_t width) {
  std::vector<float> w(static_cast<size_t>(width));
  for (int64_t i = 0; i < width; ++i) w[i] = 0.9f + 0.05f * static_cast<float>((stage * 7 + i) % 5);
  return w;
}

std::vector<float> stage_bias(int stage, int64_t width) {
  std::vector<float> b(static_cast<size_t>(width));
  for (int64_t i = 0; i < width; ++i) b[i] = 0.1f * static_cast<float>(stage + 1) - 0.01f * i;
  return b;
}

std::vector<float> first_input(int microbatch, int64_t width) {
  std::vector<float> x(static_cast<size_t>(width));
  for (int64_t i = 0; i < width; ++i) x[i] = static_cast<float>(microbatch + 1) + i / 64.0f;
  return x;
}

// The serial reference: the input and output gradient of every (micro-batch, stage).
struct Reference {
  std::vector<std::vector<std::vector<float>>> input;        // [m][s]
  std::vector<std::vector<std::vector<float>>> output_grad;  // [m][s]
  std::vector<std::vector<float>> weight_grad;               // [s], summed over m
  std::vector<std::vector<float>> bias_grad;                 // [s]
};

Reference serial_reference(int microbatches, int stages, int64_t width) {
  Reference ref;
  ref.input.assign(microbatches, std::vector<std::vector<float>>(stages));
  ref.output_grad.assign(microbatches, std::vector<std::vector<float>>(stages));
  ref.weight_grad.assign(stages, std::vector<float>(width, 0.0f));
  ref.bias_grad.assign(stages, std::vector<float>(width, 0.0f));
  for (int m = 0; m < microbatches; ++m) {
    std::vector<float> x = first_input(m, width);
    for (int s = 0; s < stages; ++s) {
      ref.input[m][s] = x;
      const std::vector<float> w = stage_weight(s, width);
      const std::vector<float> b = stage_bias(s, width);
      for (int64_t i = 0; i < width; ++i) x[i] = w[i] * x[i] + b[i];
    }
    std::vector<float> g = x;  // d(0.5 |y|^2)/dy
    for (int s = stages - 1; s >= 0; --s) {
      ref.output_grad[m][s] = g;
      const std::vector<float> w = stage_weight(s, width);
      for (int64_t i = 0; i < width; ++i) {
        ref.weight_grad[s][i] += g[i] * ref.input[m][s][i];
        ref.bias_grad[s][i] += g[i];
        g[i] *= w[i];
      }
    }
  }
  return ref;
}

double rel_error(const Tensor& got, const std::vector<float>& want) {
  return relative_error(got, Tensor::from_vector(want, {static_cast<int64_t>(want.size())}));
}

class SyntheticStages final : public StageCompute {
 public:
  // pairs: DualPipe's F&B blocks come as one forward_backward_input call (recorded as "P"),
  // which runs the two one after the other.
  SyntheticStages(const Schedule& schedule, int rank, int64_t width, bool pairs = false)
      : pairs_(pairs),
        width_(width),
        last_stage_(schedule.layout.num_stages() - 1),
        ref_(serial_reference(schedule.microbatches, schedule.layout.num_stages(), width)) {
    for (int c = 0; c < schedule.layout.chunks; ++c) {
      const int s = schedule.layout.stage_of(rank, c);
      weight_grad_[s] = std::vector<float>(width, 0.0f);
      bias_grad_[s] = std::vector<float>(width, 0.0f);
    }
  }

  std::vector<int64_t> activation_shape(int, int stage) const override {
    EXPECT_GT(stage, 0) << "activation_shape is never asked for stage 0";
    return {width_};
  }

  Tensor forward(int m, int s, const Tensor& input) override {
    record('F', m, s);
    EXPECT_FALSE(done(m, s, 'F')) << "second F(" << m << "," << s << ")";
    if (s == 0) {
      EXPECT_FALSE(input.defined()) << "stage 0 gets no input";
    } else {
      EXPECT_TRUE(input.defined()) << "F(" << m << "," << s << ") without input";
      if (input.defined()) {
        EXPECT_LE(rel_error(input, ref_.input[m][s]), 1e-6)
            << "F(" << m << "," << s << ") was handed another micro-batch's or stage's input";
      }
    }
    done_[{m, s, 'F'}] = true;
    const std::vector<float> x = s == 0 ? first_input(m, width_) : input.to_vector();
    inputs_[{m, s}] = x;
    const std::vector<float> w = stage_weight(s, width_);
    const std::vector<float> b = stage_bias(s, width_);
    std::vector<float> y(x.size());
    for (int64_t i = 0; i < width_; ++i) y[i] = w[i] * x[i] + b[i];
    if (s == last_stage_) {
      last_outputs_[m] = y;
      return Tensor();
    }
    return Tensor::from_vector(y, {width_});
  }

  Tensor backward_input(int m, int s, const Tensor& output_grad) override {
    record('B', m, s);
    EXPECT_TRUE(done(m, s, 'F')) << "B(" << m << "," << s << ") before its F";
    EXPECT_FALSE(done(m, s, 'B')) << "second B(" << m << "," << s << ")";
    done_[{m, s, 'B'}] = true;
    std::vector<float> g;
    if (s == last_stage_) {
      EXPECT_FALSE(output_grad.defined()) << "the last stage starts the backward from its loss";
      g = last_outputs_[m];
    } else {
      EXPECT_TRUE(output_grad.defined()) << "B(" << m << "," << s << ") without gradient";
      if (!output_grad.defined()) return Tensor();
      EXPECT_LE(rel_error(output_grad, ref_.output_grad[m][s]), 1e-6)
          << "B(" << m << "," << s << ") was handed another micro-batch's or stage's gradient";
      g = output_grad.to_vector();
    }
    output_grads_[{m, s}] = g;
    if (s == 0) return Tensor();
    const std::vector<float> w = stage_weight(s, width_);
    std::vector<float> gx(g.size());
    for (int64_t i = 0; i < width_; ++i) gx[i] = g[i] * w[i];
    return Tensor::from_vector(gx, {width_});
  }

  void backward_weight(int m, int s) override {
    record('W', m, s);
    EXPECT_TRUE(done(m, s, 'B')) << "W(" << m << "," << s << ") before its B";
    EXPECT_FALSE(done(m, s, 'W')) << "second W(" << m << "," << s << ")";
    done_[{m, s, 'W'}] = true;
    const std::vector<float>& g = output_grads_[{m, s}];
    const std::vector<float>& x = inputs_[{m, s}];
    ASSERT_EQ(static_cast<int64_t>(g.size()), width_);
    for (int64_t i = 0; i < width_; ++i) {
      weight_grad_[s][i] += g[i] * x[i];
      bias_grad_[s][i] += g[i];
    }
  }

  bool pairs_forward_backward() const override { return pairs_; }
  std::pair<Tensor, Tensor> forward_backward_input(int fm, int fs, const Tensor& input, int bm,
                                                   int bs, const Tensor& output_grad) override {
    record('P', fm, fs);
    Tensor out = forward(fm, fs, input);
    return {std::move(out), backward_input(bm, bs, output_grad)};
  }

  bool done(int m, int s, char kind) const { return done_.count({m, s, kind}) > 0; }
  const std::vector<std::string>& calls() const { return calls_; }
  const std::map<int, std::vector<float>>& weight_grad() const { return weight_grad_; }
  const std::map<int, std::vector<float>>& bias_grad() const { return bias_grad_; }
  const Reference& reference() const { return ref_; }

 private:
  struct Key {
    int m;
    int s;
    char kind;
    auto operator<=>(const Key&) const = default;
  };
  void record(char kind, int m, int s) {
    calls_.push_back(std::string(1, kind) + std::to_string(m) + "," + std::to_string(s));
  }

  bool pairs_;
  int64_t width_;
  int last_stage_;
  Reference ref_;
  std::map<Key, bool> done_;
  std::map<std::pair<int, int>, std::vector<float>> inputs_;
  std::map<std::pair<int, int>, std::vector<float>> output_grads_;
  std::map<int, std::vector<float>> last_outputs_;
  std::map<int, std::vector<float>> weight_grad_;
  std::map<int, std::vector<float>> bias_grad_;
  std::vector<std::string> calls_;
};

struct Case {
  std::string schedule;
  int microbatches;
  int64_t width = 16;
  int receive_window = 4;
  double latency_us = 0;  // > 0: over a DelayedLink
  bool pairs = false;     // the stage pairs DualPipe's F&B blocks
};

std::string describe(const Case& c, int pp) {
  return c.schedule + " pp=" + std::to_string(pp) + " M=" + std::to_string(c.microbatches) +
         " width=" + std::to_string(c.width) + " window=" + std::to_string(c.receive_window) +
         " latency_us=" + std::to_string(c.latency_us) + (c.pairs ? " paired" : "");
}

std::shared_ptr<parallel::comm::Communicator> pipeline_comm(double latency_us) {
  // A rank that fails stops posting; the others then report a timeout instead of hanging.
  parallel::comm::CommOptions options;
  options.timeout_seconds = 30;
  auto mpi =
      std::make_shared<parallel::comm::MpiBackend>(parallel::comm::MpiComm::world(), options);
  if (latency_us <= 0) return mpi;
  parallel::comm::LinkModel link;
  link.latency_us = latency_us;
  return std::make_shared<parallel::comm::DelayedLink>(mpi, link);
}

// Runs `steps` steps of the case and checks everything the header promises.
void run_case(const Case& c, int steps = 2) {
  const int pp = world_size();
  SCOPED_TRACE(describe(c, pp));
  ScheduleRequest request;
  request.name = c.schedule;
  request.pp = pp;
  request.microbatches = c.microbatches;
  request.virtual_stages = c.schedule == "interleaved" ? 2 : 1;
  const Schedule schedule = make_schedule(request);
  auto comm = pipeline_comm(c.latency_us);
  const int rank = comm->rank();
  ExecutorOptions options;
  options.receive_window = c.receive_window;
  PipelineExecutor executor(schedule, comm, options);
  const std::vector<Action>& list = schedule.ranks[rank];

  for (int step = 0; step < steps; ++step) {
    SyntheticStages stages(schedule, rank, c.width, c.pairs);
    const ExecutorStats stats = executor.run(stages);
    // The F&B blocks, when the stage pairs them: an overlapped F and the next compute, a B.
    std::vector<bool> paired_backward(list.size(), false);
    int pairs = 0;
    for (size_t i = 0; c.pairs && i < list.size(); ++i) {
      if (list[i].kind != ActionKind::Forward || !list[i].overlapped) continue;
      size_t j = i + 1;
      while (j < list.size() && !is_compute(list[j].kind)) ++j;
      if (j == list.size() || list[j].kind != ActionKind::BackwardInput) continue;
      paired_backward[j] = true;
      ++pairs;
      // The block is one call, and both actions' timeline entries span it.
      EXPECT_EQ(stats.timeline[j].start_s, stats.timeline[i].start_s) << to_string(list[j]);
      EXPECT_EQ(stats.timeline[j].end_s, stats.timeline[i].end_s) << to_string(list[j]);
    }
    if (c.pairs && schedule.name == "dualpipev") {
      EXPECT_GT(pairs, 0);
    }
    int paired_calls = 0;
    for (const std::string& call : stages.calls()) paired_calls += call[0] == 'P' ? 1 : 0;
    EXPECT_EQ(paired_calls, pairs);

    // Exactly once: every (micro-batch, stage) this rank holds ran its F, B and W.
    for (int chunk = 0; chunk < schedule.layout.chunks; ++chunk) {
      const int s = schedule.layout.stage_of(rank, chunk);
      for (int m = 0; m < schedule.microbatches; ++m) {
        for (char kind : {'F', 'B', 'W'}) {
          EXPECT_TRUE(stages.done(m, s, kind)) << kind << "(" << m << "," << s << ") never ran";
        }
      }
    }
    int computes = 0;
    for (const Action& a : list) computes += is_compute(a.kind) ? 1 : 0;
    EXPECT_EQ(static_cast<int>(stages.calls().size()), computes + pairs);

    // The weight gradients against the serial sums.
    for (const auto& [s, grad] : stages.weight_grad()) {
      const int64_t n = static_cast<int64_t>(grad.size());
      EXPECT_LE(relative_error(Tensor::from_vector(grad, {n}),
                               Tensor::from_vector(stages.reference().weight_grad[s], {n})),
                1e-6)
          << "weight gradient of stage " << s;
      EXPECT_LE(relative_error(Tensor::from_vector(stages.bias_grad().at(s), {n}),
                               Tensor::from_vector(stages.reference().bias_grad[s], {n})),
                1e-6)
          << "bias gradient of stage " << s;
    }

    // Stats: one timeline entry per action in list order, computes in the order of the list,
    // a fused B's W between the B and the gradient's send.
    ASSERT_EQ(stats.timeline.size(), list.size());
    double compute_sum = 0;
    double last_compute_end = 0;
    for (size_t i = 0; i < list.size(); ++i) {
      const ActionTiming& t = stats.timeline[i];
      EXPECT_EQ(t.action, list[i]);
      EXPECT_GE(t.end_s, t.start_s) << to_string(t.action);
      EXPECT_LE(t.end_s, stats.step_seconds) << to_string(t.action);
      if (is_compute(t.action.kind) && !paired_backward[i]) {
        EXPECT_GE(t.start_s, last_compute_end) << to_string(t.action) << " overlaps the previous";
        last_compute_end = t.end_s;
        compute_sum += t.end_s - t.start_s;
      }
      if (t.action.kind == ActionKind::SendGrad) {
        // The W of a fused B runs before the gradient leaves.
        for (size_t j = 0; j < i; ++j) {
          const Action& b = list[j];
          if (b.kind == ActionKind::BackwardInput && b.fused_weight &&
              b.microbatch == t.action.microbatch && b.stage == t.action.stage) {
            EXPECT_EQ(list[j + 1].kind, ActionKind::BackwardWeight);
            EXPECT_GE(t.start_s, stats.timeline[j + 1].end_s) << "send before the fused W";
          }
        }
      }
    }
    EXPECT_NEAR(stats.compute_seconds, compute_sum, 1e-9);
    EXPECT_GE(stats.step_seconds, stats.compute_seconds);
    EXPECT_GE(stats.recv_wait_seconds, 0.0);
    EXPECT_GE(stats.send_wait_seconds, 0.0);
  }
}

// Micro-batch counts for a schedule at this pp: the minimum, and counts that are and are not
// multiples of pp.
std::vector<int> microbatch_counts(const std::string& schedule, int pp) {
  const int lo = std::max(min_microbatches(schedule, pp), pp);
  std::vector<int> counts = {lo, lo + 1, 2 * lo, 2 * lo + 1};
  if (min_microbatches(schedule, pp) < pp) counts.push_back(1);
  return counts;
}

class EverySchedule : public ::testing::TestWithParam<std::string> {};

TEST_P(EverySchedule, RunsEveryMicrobatchCount) {
  for (int m : microbatch_counts(GetParam(), world_size())) run_case({GetParam(), m});
}

TEST_P(EverySchedule, LargeMessagesAndOneReceiveAhead) {
  // 256 KiB per transfer goes past the shared-memory eager limit (rendezvous protocol).
  const int pp = world_size();
  const int m = std::max(min_microbatches(GetParam(), pp), pp) + 1;
  run_case({GetParam(), m, 64 * 1024, 1});
}

TEST_P(EverySchedule, OverADelayedLink) {
  const int pp = world_size();
  const int m = std::max(min_microbatches(GetParam(), pp), pp) + 1;
  run_case({GetParam(), m, 16, 2, 500.0}, 1);
}

// A stage that pairs DualPipe's F&B blocks gets each block as one call, both inputs in hand,
// and computes exactly what the unpaired run computes; schedules without such blocks are
// untouched.
TEST_P(EverySchedule, PairedForwardBackwardBlocks) {
  for (int m : microbatch_counts(GetParam(), world_size()))
    run_case({GetParam(), m, 16, 4, 0.0, true});
  const int pp = world_size();
  const int m = std::max(min_microbatches(GetParam(), pp), pp) + 1;
  run_case({GetParam(), m, 16, 1, 500.0, true}, 1);
}

INSTANTIATE_TEST_SUITE_P(Pipeline, EverySchedule,
                         ::testing::Values("1f1b", "interleaved", "zb-h1", "dualpipev"),
                         [](const ::testing::TestParamInfo<std::string>& param_info) {
                           std::string name = param_info.param;
                           for (char& ch : name) ch = ch == '-' ? '_' : ch;
                           return name;
                         });

TEST(PipelineTags, StayInRangeAndApartForConcurrentStreams) {
  std::map<int, std::string> seen;
  const int stages = 8;
  for (int m = 0; m < 64; ++m) {
    for (int b = 0; b + 1 < stages; ++b) {
      for (bool gradient : {false, true}) {
        const int tag = p2p_tag(m, b, gradient, stages);
        EXPECT_GE(tag, 0);
        EXPECT_LE(tag, 32767);
        const std::string who =
            std::to_string(m) + "/" + std::to_string(b) + "/" + std::to_string(gradient);
        EXPECT_TRUE(seen.emplace(tag, who).second) << who << " reuses the tag of " << seen[tag];
      }
    }
  }
  // Far past the tag space the tags wrap but stay in range and keep the direction bit.
  EXPECT_LE(p2p_tag(100000, 6, true, stages), 32767);
  EXPECT_EQ(p2p_tag(100000, 6, true, stages) % 2, 1);
}

}  // namespace
}  // namespace trident::parallel::pp
