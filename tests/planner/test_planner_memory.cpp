// The planner's memory prediction against the allocator: the tiny model on one rank with fp32
// weights, gradients, AdamW moments and one micro-batch's forward + backward. Every tensor byte
// goes through trident::Allocator, so its peak is the rank's real peak.
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "models/deepseek_v3/model.h"
#include "models/deepseek_v3/planner/planner.h"
#include "runtime/core/allocator.h"
#include "tests/models/test_batches.h"
#include "tests/planner/planner_test_configs.h"

namespace trident::models::planner {
namespace {

struct Measured {
  double peak = 0;         // everything alive at the step's peak
  double activations = 0;  // peak minus what was alive before the forward
};

// Runs one training step's memory-relevant part on a fresh model and reads the allocator.
Measured measure_step(const config::TridentConfig& config) {
  Allocator& cpu = Allocator::instance(Device::CPU);
  models::DeepSeekV3Model model(config.model(), 11);
  std::vector<Tensor> moments;  // AdamW's m and v of every trained parameter
  for (const models::Parameter& p : model.params().parameters()) {
    if (!p.spec->trained) continue;
    moments.push_back(Tensor::zeros({p.value.numel()}));
    moments.push_back(Tensor::zeros({p.value.numel()}));
  }
  const int64_t rows = config.train().micro_batch(), seq = config.train().seq_len();
  const models::TokenBatch batch =
      models::testing::random_batch(rows, seq, config.model().vocab_size(), 3);
  const models::LossScales scales =
      models::make_loss_scales(models::count_targets(batch, model.mtp_depth()), 0.3, 1e-4);
  model.sequence_layout(rows, seq);  // the RoPE table is set up once, not per step
  model.params().zero_grad();
  cpu.reset_peak();
  const double before = static_cast<double>(cpu.stats().current_bytes);
  model.forward_backward(batch, scales);
  Measured m;
  m.peak = static_cast<double>(cpu.stats().peak_bytes);
  m.activations = m.peak - before;
  return m;
}

double relative_gap(double predicted, double measured) {
  return std::abs(predicted - measured) / measured;
}

class TinyMemory : public ::testing::TestWithParam<std::pair<int, int>> {};

TEST_P(TinyMemory, PredictionMatchesTheAllocatorPeakWithinTenPercent) {
  const auto [rows, seq] = GetParam();
  const config::TridentConfig config = testing::tiny_single_rank(rows, seq);
  const Plan plan = make_plan(config, 1, HardwareSpec{});
  const MemoryBreakdown& predicted = plan_for_rank(plan, 0).memory;
  const Measured measured = measure_step(config);

  // fp32 working weights are the master copy: no extra master, 4 + 4 + 8 bytes per parameter.
  EXPECT_EQ(predicted.master, 0.0);
  const double act = predicted.activations + predicted.transient + predicted.a2a_buffers;
  RecordProperty("predicted_total", std::to_string(predicted.total()));
  RecordProperty("measured_peak", std::to_string(measured.peak));
  EXPECT_LE(relative_gap(predicted.total(), measured.peak), 0.10)
      << "predicted " << predicted.total() << " B (weights " << predicted.weights << ", grads "
      << predicted.grads << ", moments " << predicted.moments << ", activations "
      << predicted.activations << ", transient " << predicted.transient << "), measured peak "
      << measured.peak << " B";
  EXPECT_LE(relative_gap(act, measured.activations), 0.10)
      << "activations: predicted " << act << " B, measured " << measured.activations << " B";
}

// Activations dominate at 4 × 64 tokens; weights and optimizer state at 1 × 16.
INSTANTIATE_TEST_SUITE_P(Shapes, TinyMemory,
                         ::testing::Values(std::make_pair(1, 16), std::make_pair(4, 64),
                                           std::make_pair(8, 48)));

}  // namespace
}  // namespace trident::models::planner
