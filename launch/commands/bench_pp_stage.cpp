#include "launch/commands/bench_pp_stage.h"

#include <mpi.h>

#include <algorithm>
#include <cmath>
#include <ctime>
#include <thread>

#include "runtime/core/rng.h"

namespace trident::bench_pp {

Tensor random_tensor(int64_t rows, int64_t cols, uint64_t seed, uint64_t stream, float scale) {
  Tensor t = Tensor::empty({rows, cols});
  float* data = t.data<float>();
  const CounterRng rng(seed, stream);
  for (int64_t i = 0; i < rows * cols; ++i) data[i] = scale * rng.normal(static_cast<uint64_t>(i));
  return t;
}

double thread_cpu_seconds() {
  timespec t{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
  return static_cast<double>(t.tv_sec) + 1e-9 * static_cast<double>(t.tv_nsec);
}

double max_over_ranks(double value) {
  double out = 0;
  MPI_Allreduce(&value, &out, 1, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
  return out;
}

double sum_in_rank_order(double value) {
  double out = 0;
  MPI_Allreduce(&value, &out, 1, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD);
  return out;
}

// The median, or with `best` the minimum: on a machine shared with other work the fastest
// repeat is the one least disturbed by it.
double typical(std::vector<double> values, bool best) {
  std::sort(values.begin(), values.end());
  return best ? values.front() : values[values.size() / 2];
}

double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

// A barrier the waiting ranks sleep through: MPI_Barrier polls, and a polling rank would take
// a core from the one being timed.
void sleeping_barrier() {
  MPI_Request request;
  MPI_Ibarrier(MPI_COMM_WORLD, &request);
  for (int done = 0;;) {
    MPI_Test(&request, &done, MPI_STATUS_IGNORE);
    if (done) return;
    std::this_thread::sleep_for(std::chrono::microseconds(500));
  }
}

// Wall time on the steady clock.
double steady_seconds() {
  return std::chrono::duration<double>(Clock::now().time_since_epoch()).count();
}

// Durations of F, B and W of the rank's first stage, `repeats` times after one warm-up, read
// on `clock` (seconds).
ActionSamples time_actions(const parallel::pp::StageLayout& layout, int rank,
                           const StageShape& shape, int repeats, double (*clock)()) {
  GemmStages stages(layout, rank, shape);
  const int s = layout.stage_of(rank, 0);
  const Tensor input = random_tensor(shape.tokens, shape.hidden, 13, 0, 1.0f);
  // The last stage starts from its own output; others take the given gradient.
  const Tensor grad = random_tensor(shape.tokens, shape.hidden, 17, 0, 1.0f);
  ActionSamples samples;
  for (int i = 0; i < repeats + 1; ++i) {
    double t = clock();
    stages.forward(i, s, input);
    const double tf = clock() - t;
    t = clock();
    stages.backward_input(i, s, grad);
    const double tb = clock() - t;
    t = clock();
    stages.backward_weight(i, s);
    const double tw = clock() - t;
    if (i == 0) continue;  // warm-up
    samples.forward.push_back(tf);
    samples.backward_input.push_back(tb);
    samples.backward_weight.push_back(tw);
  }
  return samples;
}

// Median (--best: fastest) of each action on every rank, mean over ranks (collective; a rank
// without samples contributes 0).
parallel::pp::StageCosts mean_costs(const ActionSamples& samples,
                                    const parallel::pp::StageLayout& layout, bool best) {
  const double ranks = layout.ranks;
  parallel::pp::StageCosts costs;
  costs.forward = sum_in_rank_order(typical(samples.forward, best)) / ranks;
  costs.backward_input = sum_in_rank_order(typical(samples.backward_input, best)) / ranks;
  costs.backward_weight = sum_in_rank_order(typical(samples.backward_weight, best)) / ranks;
  return costs;
}

// F, B and W of one micro-batch through the rank's first stage, timed in a quiet phase: the
// ranks take turns, the others sleeping in a barrier, so each rank has a core to itself.
// Median (--best: fastest) over `repeats`, mean over ranks.
parallel::pp::StageCosts calibrate(const parallel::pp::StageLayout& layout, int rank,
                                   const StageShape& shape, int repeats, bool best) {
  ActionSamples samples;
  for (int turn = 0; turn < layout.ranks; ++turn) {
    sleeping_barrier();
    if (turn == rank) samples = time_actions(layout, rank, shape, repeats, steady_seconds);
  }
  sleeping_barrier();
  return mean_costs(samples, layout, best);
}

// F, B and W as the executor ran them in one step: the mean CPU seconds of the computing
// thread over that step's actions of each kind on every rank (collective). CPU time, not wall
// time: how a shared core stretches wall time is the simulator's business (its core model);
// the CPU time is the work the core model divides among the ranks, with what sharing caches
// and the memory bus, being preempted and touching fresh buffers cost in a real step. Two
// other sources were measured and left: a separate calibration (every rank running the same
// GEMMs in a loop) missed the step's own by -10 % to +30 % from schedule to schedule, a loop
// interleaving the ranks' work differently from a step; and the costs of another step of the
// same schedule predict a step to 0.82-1.36 of its time (the `prev` column): the same work
// costs up to a quarter more CPU time from one step to the next here.
parallel::pp::StageCosts in_step_costs(const ActionSamples& cpu) {
  const std::vector<double>* kinds[3] = {&cpu.forward, &cpu.backward_input, &cpu.backward_weight};
  double mean[3];
  for (int k = 0; k < 3; ++k) {
    double sum = 0;
    for (double seconds : *kinds[k]) sum += seconds;
    mean[k] = sum_in_rank_order(sum) / sum_in_rank_order(static_cast<double>(kinds[k]->size()));
  }
  parallel::pp::StageCosts costs;
  costs.forward = mean[0];
  costs.backward_input = mean[1];
  costs.backward_weight = mean[2];
  return costs;
}

}  // namespace trident::bench_pp
