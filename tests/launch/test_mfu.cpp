// Model FLOPs utilisation as the progress line and the metrics report it: FLOPs per token of the
// published 671B model near 6 × its 37B activated parameters, the utilisation formula over the
// job's ranks, and the --peak-tflops values accepted and refused.
#include <gtest/gtest.h>

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
  EXPECT_DOUBLE_EQ(parse_peak_flops("2.5"), 2.5e12);
  EXPECT_DOUBLE_EQ(parse_peak_flops("989"), 989e12);
  EXPECT_GT(parse_peak_flops("measure"), 1e8);  // any machine does 0.1 GFLOPS in fp32
  for (const char* bad : {"", "fast", "-1", "0", "3x"}) {
    EXPECT_THROW(parse_peak_flops(bad), UserError) << bad;
  }
}

}  // namespace
}  // namespace trident::train
