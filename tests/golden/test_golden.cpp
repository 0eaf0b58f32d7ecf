// Trident vs the PyTorch reference (tests/reference/deepseek_v3_ref.py, autograd, fp64) on the
// tiny DeepSeek-V3 (2 dense + 2 MoE layers, MTP, group-limited routing, balance loss on) and on
// two tiny DeepSeek-V2s (softmax routing, greedy or group-limited greedy top-k, no q-LoRA,
// 2 shared experts, no MTP, the device and communication balance losses on): logits, losses,
// every parameter gradient, and a 10-step training run, all compared by norm-scaled relative
// error ≤ 1e-4. Weights and batches travel as HF safetensors.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <vector>

#include "models/deepseek_v3/model.h"
#include "runtime/config/config.h"
#include "runtime/io/batch_safetensors.h"
#include "runtime/io/hf_weights.h"
#include "runtime/io/safetensors.h"
#include "runtime/train/data_setup.h"
#include "runtime/train/trainer.h"
#include "tests/models/test_configs.h"

namespace trident {
namespace {

constexpr double kTolerance = 1e-4;

struct GoldenCase {
  std::string name;
  std::vector<std::string> overrides;  // on top of the tiny preset
};

std::string case_name(const ::testing::TestParamInfo<GoldenCase>& info) { return info.param.name; }

class Golden : public ::testing::TestWithParam<GoldenCase> {};

INSTANTIATE_TEST_SUITE_P(
    Models, Golden,
    ::testing::Values(GoldenCase{"DeepSeekV3", {}},
                      GoldenCase{"DeepSeekV2GroupLimited",
                                 models::testing::tiny_v2_overrides("group_limited_greedy")},
                      GoldenCase{"DeepSeekV2Greedy", models::testing::tiny_v2_overrides("greedy")}),
    case_name);

config::TridentConfig golden_config(const GoldenCase& golden) {
  config::TridentConfig config = config::load_config(config::resolve_config_path("tiny"));
  // A visible balance-loss gradient and SFT-style masking are part of what is checked.
  config::apply_overrides(config, {"train.aux_loss_alpha=0.01", "train.mode=sft",
                                   "train.steps=10", "data.task_digits=2"});
  config::apply_overrides(config, golden.overrides);
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
  const std::string dir = ::testing::TempDir() + "/trident_golden_" + name + "_" +
                          ::testing::UnitTest::GetInstance()->current_test_info()->name();
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  return dir;
}

void run_reference(const std::string& args) {
  const std::string command = std::string(TRIDENT_PYTHON) + " " + TRIDENT_REFERENCE_SCRIPT + " " + args;
  ASSERT_EQ(std::system(command.c_str()), 0) << "reference failed: " << command;
}

TEST_P(Golden, ForwardBackwardMatchesPyTorch) {
  const config::TridentConfig config = golden_config(GetParam());
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
  const double logits_error = relative_error(forward.logits, ref.load("logits", DType::F32));
  EXPECT_LE(logits_error, kTolerance);
  if (model.mtp_depth() > 0) {
    EXPECT_LE(relative_error(forward.mtp_logits[0], ref.load("mtp_logits.1", DType::F32)),
              kTolerance)
        << "MTP logits";
  }

  model.params().zero_grad();
  const models::LossResult losses = model.forward_backward(batch, scales);
  EXPECT_NEAR(losses.loss, ref.load("loss").item(0), kTolerance * std::abs(losses.loss));
  EXPECT_NEAR(losses.lm_loss, ref.load("lm_loss").item(0), kTolerance * losses.lm_loss);
  EXPECT_NEAR(losses.mtp_loss, ref.load("mtp_loss").item(0), kTolerance * losses.mtp_loss);
  EXPECT_GT(losses.balance_loss, 0.0);
  EXPECT_NEAR(losses.balance_loss, ref.load("aux_loss").item(0), kTolerance * losses.balance_loss);

  int compared = 0;
  double worst_gradient = 0.0;
  for (const models::Parameter& param : model.params().parameters()) {
    if (!param.spec->trained) continue;
    const std::string name = "grad." + param.spec->name;
    ASSERT_TRUE(ref.contains(name)) << name;
    const double error = relative_error(param.grad, ref.load(name, DType::F32));
    EXPECT_LE(error, kTolerance) << name;
    worst_gradient = std::max(worst_gradient, error);
    ++compared;
  }
  EXPECT_GT(compared, 60);
  // Group-limited routing keeps every token within topk_group groups; greedy (the same model
  // otherwise) does not, so the two cases test different selections.
  const auto& m = config.model();
  const int64_t per_group = m.n_routed_experts() / m.n_group();
  int64_t beyond = 0;
  for (int64_t layer = m.first_k_dense_replace(); layer < m.num_hidden_layers(); ++layer) {
    const Tensor idx = ref.load("router_indices." + std::to_string(layer), DType::I32);
    for (int64_t t = 0; t < idx.size(0); ++t) {
      std::vector<bool> used(static_cast<size_t>(m.n_group()), false);
      for (int64_t j = 0; j < idx.size(1); ++j) {
        used[static_cast<size_t>(idx.data<int32_t>()[t * idx.size(1) + j] / per_group)] = true;
      }
      if (std::count(used.begin(), used.end(), true) > m.topk_group()) ++beyond;
    }
  }
  if (m.topk_method() == "greedy") {
    EXPECT_GT(beyond, 0) << "greedy routing never left the group limit: the case tests nothing";
  } else {
    EXPECT_EQ(beyond, 0) << "tokens routed beyond model.topk_group groups";
  }
  std::printf("[ %s ] logits %.2g, loss %.2g, balance loss %.2g, worst of %d gradients %.2g\n",
              GetParam().name.c_str(), logits_error,
              std::abs(losses.loss - ref.load("loss").item(0)) / std::abs(losses.loss),
              std::abs(losses.balance_loss - ref.load("aux_loss").item(0)) / losses.balance_loss,
              compared, worst_gradient);
}

TEST_P(Golden, TenTrainingStepsMatchPyTorch) {
  const config::TridentConfig config = golden_config(GetParam());
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
