#pragma once
// `trident bench pp`'s stand-in pipeline stage (fp32 GEMMs on the CPU, not the model) and the
// ways its F, B and W are timed: alone on a core, and inside executor steps (CPU time).

#include <chrono>
#include <cmath>
#include <cstdint>
#include <map>
#include <utility>
#include <vector>

#include "ops/ops.h"
#include "parallel/pp/executor.h"
#include "parallel/pp/schedule.h"
#include "parallel/pp/simulate.h"
#include "runtime/core/error.h"
#include "runtime/core/tensor.h"

namespace trident::bench_pp {

using Clock = std::chrono::steady_clock;

// The default stage runs ~14 ms per F, B or W here: long against the 1-3 ms a blocked rank
// waits for a core on busy shared cores (docs/pipeline.md).
struct StageShape {
  int64_t tokens = 1024;
  int64_t hidden = 512;
  int64_t layers = 2;
};

// A [rows, cols] fp32 tensor of N(0, scale²) values from the keyed stream (seed, stream).
Tensor random_tensor(int64_t rows, int64_t cols, uint64_t seed, uint64_t stream, float scale);

// CPU time of the calling thread only (the executor's: compute and communication calls).
double thread_cpu_seconds();
// Wall time on the steady clock, and since `start`.
double steady_seconds();
double seconds_since(Clock::time_point start);

// Durations of F, B and W, in the order they ran (seconds, on whichever clock the caller
// says).
struct ActionSamples {
  std::vector<double> forward, backward_input, backward_weight;
};

// The stand-in stage: a chain of linear layers. F stashes each layer's input, B stashes each
// layer's output gradient, W turns the two into weight gradients and frees both.
class GemmStages final : public parallel::pp::StageCompute {
 public:
  GemmStages(const parallel::pp::StageLayout& layout, int rank, const StageShape& shape)
      : shape_(shape), last_stage_(layout.num_stages() - 1) {
    const float scale = 1.0f / std::sqrt(static_cast<float>(shape.hidden));
    for (int c = 0; c < layout.chunks; ++c) {
      const int s = layout.stage_of(rank, c);
      for (int64_t l = 0; l < shape.layers; ++l) {
        weights_[s].push_back(random_tensor(shape.hidden, shape.hidden, 7, s * 100 + l, scale));
        grads_[s].push_back(Tensor::zeros({shape.hidden, shape.hidden}));
      }
    }
    first_input_ = random_tensor(shape.tokens, shape.hidden, 11, 0, 1.0f);
  }

  std::vector<int64_t> activation_shape(int, int) const override {
    return {shape_.tokens, shape_.hidden};
  }

  // CPU seconds of the computing thread in each action this object ran.
  const ActionSamples& cpu() const { return cpu_; }

  Tensor forward(int m, int s, const Tensor& input) override {
    const double start = thread_cpu_seconds();
    std::vector<Tensor>& stash = inputs_[{m, s}];
    Tensor x = s == 0 ? first_input_ : input;
    for (const Tensor& w : weights_.at(s)) {
      stash.push_back(x);
      Tensor y = Tensor::empty({shape_.tokens, shape_.hidden});
      ops::linear_forward(x, w, y);
      x = y;
    }
    if (s == last_stage_) last_outputs_[m] = x;
    cpu_.forward.push_back(thread_cpu_seconds() - start);
    return x;
  }

  Tensor backward_input(int m, int s, const Tensor& output_grad) override {
    const double start = thread_cpu_seconds();
    Tensor g = s == last_stage_ ? take(last_outputs_, m) : output_grad;
    std::vector<Tensor>& stash = output_grads_[{m, s}];
    const std::vector<Tensor>& w = weights_.at(s);
    stash.resize(w.size());
    for (size_t l = w.size(); l-- > 0;) {
      stash[l] = g;
      Tensor dx = Tensor::empty({shape_.tokens, shape_.hidden});
      ops::linear_backward_input(g, w[l], dx);
      g = dx;
    }
    cpu_.backward_input.push_back(thread_cpu_seconds() - start);
    return s == 0 ? Tensor() : g;
  }

  void backward_weight(int m, int s) override {
    const double start = thread_cpu_seconds();
    const std::vector<Tensor> x = take(inputs_, std::make_pair(m, s));
    const std::vector<Tensor> dy = take(output_grads_, std::make_pair(m, s));
    std::vector<Tensor>& grads = grads_.at(s);
    for (size_t l = 0; l < grads.size(); ++l) ops::linear_backward_weight(dy[l], x[l], grads[l]);
    cpu_.backward_weight.push_back(thread_cpu_seconds() - start);
  }

 private:
  template <typename Map, typename Key>
  static typename Map::mapped_type take(Map& map, const Key& key) {
    auto it = map.find(key);
    TRIDENT_CHECK(it != map.end(), "bench pp: missing stash");
    typename Map::mapped_type value = std::move(it->second);
    map.erase(it);
    return value;
  }

  StageShape shape_;
  int last_stage_;
  Tensor first_input_;
  std::map<int, std::vector<Tensor>> weights_;
  std::map<int, std::vector<Tensor>> grads_;
  std::map<std::pair<int, int>, std::vector<Tensor>> inputs_;
  std::map<std::pair<int, int>, std::vector<Tensor>> output_grads_;
  std::map<int, Tensor> last_outputs_;
  ActionSamples cpu_;
};

// Collective over MPI_COMM_WORLD.
double max_over_ranks(double value);
double sum_in_rank_order(double value);

// The median, or with `best` the minimum.
double typical(std::vector<double> values, bool best);

// A barrier the waiting ranks sleep through (MPI_Barrier would spin on their cores).
void sleeping_barrier();

// F, B and W of the rank's first stage, `repeats` times after one warm-up, read on `clock`.
ActionSamples time_actions(const parallel::pp::StageLayout& layout, int rank,
                           const StageShape& shape, int repeats, double (*clock)());

// Median (--best: fastest) of each action on every rank, mean over ranks (collective).
parallel::pp::StageCosts mean_costs(const ActionSamples& samples,
                                    const parallel::pp::StageLayout& layout, bool best);

// F, B and W alone on a core: the ranks take turns, the others sleeping in a barrier.
parallel::pp::StageCosts calibrate(const parallel::pp::StageLayout& layout, int rank,
                                   const StageShape& shape, int repeats, bool best);

// F, B and W as the executor ran them in one step: the mean CPU seconds of the computing
// thread per kind over every rank's actions (collective).
parallel::pp::StageCosts in_step_costs(const ActionSamples& cpu);

}  // namespace trident::bench_pp
