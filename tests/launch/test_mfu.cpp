// Model FLOPs utilisation as the progress line and the metrics report it: FLOPs per token of the
// published 671B model near 6 × its 37B activated parameters, the utilisation formula over the
// job's ranks, and the --peak-tflops values accepted and refused.
#include <gtest/gtest.h>

#include <utility>
#include <vector>

#include "runtime/config/config.h"
#include "runtime/core/error.h"
#include "runtime/train/mfu.h"
#include "runtime/train/peak_flops.h"

namespace trident::train {
namespace {

config::TridentConfig preset(const std::string& name) {
  return config::load_config(config::resolve_config_path(name));
}

TEST(Mfu, FlopsPerTokenOf671BIsSixTimesActivatedParametersPlusAttention) {
  config::TridentConfig config = preset("deepseek-v3-671b");
  config.mutable_train()->set_seq_len(4096);
  const ThroughputModel model = make_throughput_model(config, 989e12);
  // 37B activated parameters (≈ 0.9B of them the embedding lookup, not a matmul) plus the MTP
  // module and the causal attention scores: between 6 × 36B and 6 × 50B.
  EXPECT_GT(model.model_flops_per_token, 6.0 * 36e9);
  EXPECT_LT(model.model_flops_per_token, 6.0 * 50e9);
}

TEST(Mfu, UtilisationIsModelFlopsOverEveryRanksPeak) {
  config::TridentConfig config = preset("tiny");
  config.mutable_parallel()->set_dp(2);
  config.mutable_parallel()->set_tp(2);
  const ThroughputModel model = make_throughput_model(config, 2e9);
  ASSERT_EQ(model.ranks, 4);
  ASSERT_GT(model.model_flops_per_token, 0.0);
  const double tokens_per_second = 1000.0;
  EXPECT_DOUBLE_EQ(model.model_flops_per_second(tokens_per_second),
                   1000.0 * model.model_flops_per_token);
  EXPECT_DOUBLE_EQ(model.mfu(tokens_per_second), 1000.0 * model.model_flops_per_token / (4 * 2e9));
  // Longer sequences cost more per token (the attention term grows with S).
  config.mutable_train()->set_seq_len(config.train().seq_len() * 4);
  EXPECT_GT(make_throughput_model(config, 2e9).model_flops_per_token, model.model_flops_per_token);
  EXPECT_EQ(ThroughputModel{}.mfu(tokens_per_second), 0.0);  // no peak known: no MFU
}

TEST(Mfu, PeakFlag) {
  EXPECT_DOUBLE_EQ(parse_peak_flops("auto"), kDefaultPeakTflops * 1e12);  // a CPU run
  EXPECT_DOUBLE_EQ(parse_peak_flops("2.5", Device::CUDA), 2.5e12);
  EXPECT_DOUBLE_EQ(parse_peak_flops("2.5"), 2.5e12);
  EXPECT_DOUBLE_EQ(parse_peak_flops("989"), 989e12);
  EXPECT_GT(parse_peak_flops("measure"), 1e8);  // any machine does 0.1 GFLOPS in fp32
  for (const char* bad : {"", "fast", "-1", "0", "3x", "Auto"}) {
    EXPECT_THROW(parse_peak_flops(bad), UserError) << bad;
  }
}

// The names the CUDA driver reports for the boards, and the dense bf16 peaks of their data
// sheets (half the "with sparsity" figure); a board the table does not know gets 0 (its GEMM is
// then timed) rather than the figure of a family whose name it contains.
TEST(Mfu, GpuPeaksByTheDriversName) {
  const std::vector<std::pair<const char*, double>> known = {{"NVIDIA H100 80GB HBM3", 989.4},
                                                             {"NVIDIA H100 PCIe", 756.5},
                                                             {"NVIDIA H100 NVL", 835.5},
                                                             {"NVIDIA H200", 989.4},
                                                             {"NVIDIA H800", 989.4},
                                                             {"NVIDIA GH200 480GB", 989.4},
                                                             {"NVIDIA A100-SXM4-80GB", 312.0},
                                                             {"NVIDIA A100 80GB PCIe", 312.0},
                                                             {"NVIDIA L40S", 362.1},
                                                             {"NVIDIA L40", 181.0},
                                                             {"NVIDIA L4", 121.0},
                                                             {"NVIDIA B200", 2250.0},
                                                             {"NVIDIA H20", 148.0}};
  for (const auto& [name, tflops] : known)
    EXPECT_DOUBLE_EQ(gpu_dense_bf16_tflops(name), tflops) << name;
  for (const char* unknown :
       {"", "NVIDIA A10G", "Tesla V100-SXM2-32GB", "NVIDIA GeForce RTX 4090", "NVIDIA H1000"}) {
    EXPECT_EQ(gpu_dense_bf16_tflops(unknown), 0.0) << unknown;
  }
}

}  // namespace
}  // namespace trident::train
