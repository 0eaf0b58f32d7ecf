// Trident vs the PyTorch reference (tests/reference/deepseek_v3_ref.py, autograd, fp64) on the
// tiny DeepSeek-V3 (2 dense + 2 MoE layers, MTP, group-limited routing, balance loss on):
// logits, losses, every parameter gradient, and a 10-step training run, all compared by
// norm-scaled relative error ≤ 1e-4. Weights and batches travel as HF safetensors.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "models/deepseek_v3/model.h"
#include "runtime/config/config.h"
#include "runtime/io/batch_safetensors.h"
#include "runtime/io/hf_weights.h"
#include "runtime/io/safetensors.h"
#include "runtime/train/data_setup.h"
#include "runtime/train/trainer.h"

namespace trident {
namespace {

constexpr double kTolerance = 1e-4;

config::TridentConfig golden_config() {
  config::TridentConfig config = config::load_config(config::resolve_config_path("tiny"));
  // A visible balance-loss gradient and SFT-style masking are part of what is checked.
  config::apply_overrides(config, {"train.aux_loss_alpha=0.01", "train.mode=sft",
                                   "train.steps=10", "data.task_digits=2"});
  config::validate(config, 1);
  return config;
}

// Moves router biases and norm weights off their trivial init so a reference that ignored
// them would disagree.
void perturb(models::ParameterStore& store) {
  int64_t salt = 0;
  for (models::Parameter& param : store.parameters()) {
    const auto kind = param.spec->kind;
    const bool norm = param.value.dim() == 1 && kind != models::ParamKind::kRouterBias;
    if (!norm && kind != models::ParamKind::kRouterBias) continue;
    float* v = param.value.data<float>();
    for (int64_t i = 0; i < param.value.numel(); ++i) {
      v[i] += 0.05f * static_cast<float>(std::sin(0.7 * static_cast<double>(i + 13 * salt)));
    }
    ++salt;
  }
}

std::string temp_dir(const std::string& name) {
  const std::string dir = ::testing::TempDir() + "/trident_golden_" + name;
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  return dir;
}

void run_reference(const std::string& args) {
  const std::string command = std::string(TRIDENT_PYTHON) + " " + TRIDENT_REFERENCE_SCRIPT + " " + args;
  ASSERT_EQ(std::system(command.c_str()), 0) << "reference failed: " << command;
}

TEST(Golden, ForwardBackwardMatchesPyTorch) {
  const config::TridentConfig config = golden_config();
  models::DeepSeekV3Model model(config.model(), config.train().seed());
  perturb(model.params());
  const std::string dir = temp_dir("fb");
  io::save_hf_weights(model.params(), dir + "/model");

  const auto sampler = train::make_train_sampler(config);
  const models::TokenBatch batch = sampler->global_batch(1);
  {
    io::SafetensorsWriter writer(dir + "/batch.safetensors", io::token_batch_entries(batch));
    io::write_token_batch(writer, batch);
    writer.finish();
  }
  std::ofstream(dir + "/train.json") << nlohmann::json{
      {"mtp_loss_weight", config.train().mtp_loss_weight()},
      {"aux_loss_alpha", config.train().aux_loss_alpha()}}.dump();
  run_reference("--model " + dir + "/model --batch " + dir + "/batch.safetensors --out " + dir +
                "/out.safetensors --train-json " + dir + "/train.json --dtype float64");
  const io::SafetensorsFile ref(dir + "/out.safetensors");

  const models::TargetCounts counts = models::count_targets(batch, model.mtp_depth());
  const models::LossScales scales = models::make_loss_scales(
      counts, config.train().mtp_loss_weight(), config.train().aux_loss_alpha());
  const models::ForwardResult forward = model.forward(batch, &scales);
  EXPECT_LE(relative_error(forward.logits, ref.load("logits", DType::F32)), kTolerance);
  EXPECT_LE(relative_error(forward.mtp_logits[0], ref.load("mtp_logits.1", DType::F32)), kTolerance)
      << "MTP logits";

  model.params().zero_grad();
  const models::LossResult losses = model.forward_backward(batch, scales);
  EXPECT_NEAR(losses.loss, ref.load("loss").item(0), kTolerance * std::abs(losses.loss));
  EXPECT_NEAR(losses.lm_loss, ref.load("lm_loss").item(0), kTolerance * losses.lm_loss);
  EXPECT_NEAR(losses.mtp_loss, ref.load("mtp_loss").item(0), kTolerance * losses.mtp_loss);
  EXPECT_NEAR(losses.balance_loss, ref.load("aux_loss").item(0), kTolerance * losses.balance_loss);

  int compared = 0;
  for (const models::Parameter& param : model.params().parameters()) {
    if (!param.spec->trained) continue;
    const std::string name = "grad." + param.spec->name;
    ASSERT_TRUE(ref.contains(name)) << name;
    EXPECT_LE(relative_error(param.grad, ref.load(name, DType::F32)), kTolerance) << name;
    ++compared;
  }
  EXPECT_GT(compared, 60);
}

TEST(Golden, TenTrainingStepsMatchPyTorch) {
  const config::TridentConfig config = golden_config();
  train::Trainer trainer(config, train::make_train_sampler(config));
  perturb(trainer.model().params());
  const std::string dir = temp_dir("train");
  io::save_hf_weights(trainer.model().params(), dir + "/model");

  const int64_t steps = config.train().steps();
  const auto sampler = train::make_train_sampler(config);
  {
    std::vector<models::TokenBatch> batches;
    std::vector<io::StEntry> entries;
    for (int64_t t = 0; t < steps; ++t) {
      batches.push_back(sampler->global_batch(t + 1));
      for (io::StEntry& entry : io::token_batch_entries(batches.back(), "_step" + std::to_string(t))) {
        entries.push_back(std::move(entry));
      }
    }
    io::SafetensorsWriter writer(dir + "/batch.safetensors", entries);
    for (int64_t t = 0; t < steps; ++t) {
      io::write_token_batch(writer, batches[static_cast<size_t>(t)], "_step" + std::to_string(t));
    }
    writer.finish();
  }
  const auto& train = config.train();
  std::ofstream(dir + "/train.json") << nlohmann::json{
      {"lr", train.lr()}, {"min_lr", train.min_lr()}, {"warmup_steps", train.warmup_steps()},
      {"steps", train.steps()}, {"weight_decay", train.weight_decay()}, {"beta1", train.beta1()},
      {"beta2", train.beta2()}, {"adam_eps", train.adam_eps()}, {"grad_clip", train.grad_clip()},
      {"mtp_loss_weight", train.mtp_loss_weight()}, {"aux_loss_alpha", train.aux_loss_alpha()},
      {"bias_update_speed", train.bias_update_speed()}}.dump();
  run_reference("--model " + dir + "/model --batch " + dir + "/batch.safetensors --out " + dir +
                "/out.safetensors --steps " + std::to_string(steps) + " --train-json " + dir +
                "/train.json --dtype float64");
  const io::SafetensorsFile ref(dir + "/out.safetensors");

  std::vector<float> losses;
  for (int64_t t = 0; t < steps; ++t) losses.push_back(static_cast<float>(trainer.step().loss));
  const Tensor ours = Tensor::from_vector(losses, {steps});
  EXPECT_LE(relative_error(ours, ref.load("losses", DType::F32)), kTolerance);
  for (int64_t t = 0; t < steps; ++t) {
    EXPECT_NEAR(losses[static_cast<size_t>(t)], ref.load("losses").item(t), kTolerance * losses[0])
        << "step " << t + 1;
  }
  // Final weights, router biases included (the bias rule is part of the step).
  for (const models::Parameter& param : trainer.model().params().parameters()) {
    EXPECT_LE(relative_error(param.value, ref.load(param.spec->name, DType::F32)), kTolerance)
        << param.spec->name;
  }
}

}  // namespace
}  // namespace trident
