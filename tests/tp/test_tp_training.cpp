// Twenty AdamW steps of the TP-split tiny model against the one-rank model on every rank:
// the losses of every step and the final weights (gathered to global shape) must agree, and
// the replicated weights must stay identical across TP ranks. The optimizer is applied per
// parameter with train::adamw_update directly, as the trainer does on each rank's slices.
#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <unordered_map>

#include "models/deepseek_v3/model.h"
#include "runtime/train/optimizer.h"
#include "tests/models/test_batches.h"
#include "tests/models/test_configs.h"
#include "tests/tp/tp_test_util.h"

namespace trident::models {
namespace {

using parallel::testing::gather_parameter;
using parallel::testing::max_difference_to_rank0;
using parallel::testing::WorldGroup;

constexpr int64_t kSteps = 20;
constexpr double kTolerance = 1e-5;

// One optimizer step on every trained parameter of a model (its own slices).
class Optimizer {
 public:
  explicit Optimizer(ParameterStore& store) : store_(store) {
    settings_.weight_decay = 0.1;
    // Adam's first steps move every element by about ±lr·sign(g). With eps 1e-8 an element
    // whose gradient sits at the fp32 noise floor (|g| ≲ 1e-8) gets an O(lr) step of arbitrary
    // sign under ANY change of summation order: the one-rank model fed the same batch as two
    // micro-batches drifts from itself by 4e-5 after one step and flips a routing decision
    // within 20. A larger eps keeps the comparison about TP rather than about that noise floor.
    settings_.eps = 1e-6;
    for (const Parameter& param : store.parameters()) {
      if (param.spec->trained)
        state_.emplace(param.spec->name, train::make_adamw_state(param.value.numel()));
    }
  }
  void step(int64_t t, double lr) {
    for (Parameter& param : store_.parameters()) {
      if (!param.spec->trained) continue;
      train::AdamWState& s = state_.at(param.spec->name);
      train::adamw_update(param.value.data<float>(), param.grad.data<float>(),
                          s.exp_avg.data<float>(), s.exp_avg_sq.data<float>(), param.value.numel(),
                          settings_, lr, t, param.spec->weight_decay);
    }
  }

 private:
  ParameterStore& store_;
  train::AdamWSettings settings_;
  std::unordered_map<std::string, train::AdamWState> state_;
};

TEST(TensorParallelTraining, TwentyAdamWStepsMatchOneRank) {
  WorldGroup group;
  DeepSeekV3Model reference(testing::tiny_config(), 7);
  DeepSeekV3Model split(testing::tiny_config(), 7,
                        ModelParallel{group.comm.get(), group.rank(), group.size()});
  Optimizer reference_opt(reference.params());
  Optimizer split_opt(split.params());

  for (int64_t t = 1; t <= kSteps; ++t) {
    const TokenBatch batch = testing::random_batch(2, 12, 256, 100 + static_cast<uint64_t>(t));
    const LossScales scales =
        make_loss_scales(count_targets(batch, reference.mtp_depth()), 0.3, 0.01);
    for (DeepSeekV3Model* model : {&reference, &split}) {
      model->params().zero_grad();
      model->reset_expert_loads();
    }
    const LossResult want = reference.forward_backward(batch, scales);
    const LossResult got = split.forward_backward(batch, scales);
    EXPECT_NEAR(got.loss, want.loss, kTolerance * want.loss) << "step " << t;
    EXPECT_NEAR(got.lm_loss, want.lm_loss, kTolerance * want.lm_loss) << "step " << t;
    EXPECT_NEAR(got.mtp_loss, want.mtp_loss, kTolerance * want.mtp_loss) << "step " << t;

    const double lr = 1e-3;
    reference_opt.step(t, lr);
    split_opt.step(t, lr);
    // Loads are identical on every TP rank (each computes all tokens' routing), so each rank
    // applies its own: no reduction over TP.
    reference.update_router_bias(reference.expert_loads(), 1e-3);
    split.update_router_bias(split.expert_loads(), 1e-3);
  }

  for (const Parameter& param : split.params().parameters()) {
    const std::string& name = param.spec->name;
    const Tensor global = gather_parameter(*group.comm, *param.spec, param.value);
    EXPECT_LE(relative_error(global, reference.params().value(name)), kTolerance) << name;
    if (parallel::testing::whole_on_every_tp_rank(*param.spec)) {
      EXPECT_EQ(max_difference_to_rank0(*group.comm, param.value), 0.0)
          << name << " is replicated but differs between TP ranks";
    }
  }
}

}  // namespace
}  // namespace trident::models
