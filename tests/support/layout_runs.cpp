#include "tests/support/layout_runs.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <string>

#include "runtime/config/config.h"
#include "runtime/train/data_setup.h"
#include "tests/support/mpi_helpers.h"

namespace trident::testing {

config::TridentConfig layout_test_config(int64_t global_batch) {
  config::TridentConfig config = config::load_config(config::resolve_config_path("tiny"));
  config::apply_overrides(
      config,
      {"train.steps=20", "train.global_batch=" + std::to_string(global_batch),
       "train.micro_batch=2", "train.seq_len=15", "parallel.a2a_chunks=3", "train.grad_clip=0.5",
       "train.aux_loss_alpha=0.001", "train.bias_update_speed=0.001", "train.mtp_loss_weight=0.3",
       "train.adam_eps=1e-6", "train.lr=1e-3", "train.min_lr=1e-4"});
  return config;
}

bool one_rank_layout(const config::TridentConfig& config) {
  const config::ParallelConfig& p = config.parallel();
  return std::max<int64_t>(1, p.pp()) * std::max<int64_t>(1, p.dp()) *
             std::max<int64_t>(1, p.tp()) ==
         1;
}

std::unique_ptr<parallel::ParallelContext> context_for(const config::TridentConfig& config) {
  if (one_rank_layout(config)) return std::make_unique<parallel::ParallelContext>();
  return parallel::make_parallel_context(config);
}

void TrainerRun::run(int64_t count) {
  for (int64_t s = 0; s < count; ++s) steps.push_back(trainer->step());
}

TrainerRun make_trainer_run(const config::TridentConfig& config, int64_t bucket_bytes) {
  TrainerRun run;
  run.context = context_for(config);
  run.trainer =
      std::make_unique<train::Trainer>(config, *run.context, train::make_train_sampler(config),
                                       train::make_eval_sampler(config), bucket_bytes);
  return run;
}

const TrainerRun& one_rank_run(const config::TridentConfig& config, int64_t steps) {
  config::TridentConfig alone = config;
  *alone.mutable_parallel() = config::default_config().parallel();
  static std::map<std::string, TrainerRun> runs;
  const std::string key = config::to_text(alone) + "#" + std::to_string(steps);
  auto it = runs.find(key);
  if (it == runs.end()) {
    TrainerRun run = make_trainer_run(alone);
    run.run(steps);
    it = runs.emplace(key, std::move(run)).first;
  }
  return it->second;
}

double held_weight_error(const models::ParameterStore& held, const models::ParameterStore& whole) {
  return worst_held_weight(held, whole).error;
}

HeldWeightError worst_held_weight(const models::ParameterStore& held,
                                  const models::ParameterStore& whole, bool trained_only) {
  HeldWeightError worst;
  for (const models::Parameter& p : held.parameters()) {
    if (trained_only && p.spec->kind == models::ParamKind::kRouterBias) continue;
    // Host copies: the stores may live in device memory (TRIDENT_CPU_DEVICE_MEMORY).
    const Tensor global = whole.get(p.spec->name).value.on(Device::CPU);
    const Tensor held_value = p.value.on(Device::CPU);
    const float* g = global.data<float>();
    const float* mine = held_value.data<float>();
    double diff = 0.0, norm = 0.0;
    for (int64_t i = 0; i < p.value.numel(); ++i) {
      const double want = g[models::global_index(*p.spec, p.slice, i)];
      diff += (mine[i] - want) * (mine[i] - want);
      norm += want * want;
    }
    const double error = std::sqrt(diff) / std::max(std::sqrt(norm), 1e-12);
    if (error > worst.error) worst = HeldWeightError{error, p.spec->name};
  }
  return worst;
}

void expect_step_matches(const train::StepMetrics& got, const train::StepMetrics& want,
                         double tolerance) {
  EXPECT_LE(relative_difference(got.loss, want.loss), tolerance)
      << "step " << want.step << " loss " << got.loss << " vs " << want.loss;
  EXPECT_LE(relative_difference(got.lm_loss, want.lm_loss), tolerance) << "step " << want.step;
  EXPECT_LE(relative_difference(got.mtp_loss, want.mtp_loss), tolerance) << "step " << want.step;
  EXPECT_LE(relative_difference(got.balance_loss, want.balance_loss), tolerance)
      << "step " << want.step;
  EXPECT_LE(relative_difference(got.grad_norm, want.grad_norm), tolerance)
      << "step " << want.step << " grad norm " << got.grad_norm << " vs " << want.grad_norm;
  EXPECT_EQ(got.tokens, want.tokens);
  EXPECT_EQ(got.target_tokens, want.target_tokens);
  EXPECT_TRUE(same_on_every_rank(got.loss)) << "step " << want.step;
  EXPECT_TRUE(same_on_every_rank(got.grad_norm)) << "step " << want.step;
}

}  // namespace trident::testing
