// Presets load, validate and survive a textproto round trip; preset names resolve.
#include <google/protobuf/util/message_differencer.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "runtime/config/config.h"
#include "runtime/core/error.h"
#include "tests/support/expect_user_error.h"

namespace trident::config {
namespace {

namespace fs = std::filesystem;

TEST(Presets, EveryPresetLoadsAndValidates) {
  for (const char* name : {"tiny", "small", "small-student", "medium", "r1-zero",
                           "deepseek-v3-671b", "deepseek-v2", "deepseek-v2-lite"}) {
    SCOPED_TRACE(name);
    const TridentConfig config = load_config(resolve_config_path(name));
    EXPECT_EQ(config.model().name(), name);
    EXPECT_NO_THROW(validate(config));
    const ParallelConfig& p = config.parallel();
    EXPECT_NO_THROW(validate(config, static_cast<int>(p.pp() * p.dp() * p.tp())));
  }
}

TEST(Presets, DeepSeekV3HasThePublishedNumbers) {
  const TridentConfig config = load_config(resolve_config_path("deepseek-v3-671b"));
  const ModelConfig& m = config.model();
  EXPECT_EQ(m.vocab_size(), 129280);
  EXPECT_EQ(m.hidden_size(), 7168);
  EXPECT_EQ(m.num_hidden_layers(), 61);
  EXPECT_EQ(m.first_k_dense_replace(), 3);
  EXPECT_EQ(m.n_routed_experts(), 256);
  EXPECT_EQ(m.num_experts_per_tok(), 8);
  EXPECT_EQ(m.rope_scaling().type(), "yarn");
  EXPECT_EQ(m.rope_scaling().factor(), 40);
  EXPECT_EQ(m.max_position_embeddings(), 163840);
  EXPECT_EQ(m.initializer_range(), 0.006);
  // The published layout runs on 2048 GPUs and nothing else.
  EXPECT_NO_THROW(validate(config, 2048));
  EXPECT_THROW(validate(config, 1024), UserError);
}

// The GEMM-bound benchmark model (docs/benchmarks.md): wide enough that its step is mostly
// matrix products, with V3's expert structure.
TEST(Presets, MediumIsLargeEnoughToBeGemmBound) {
  const TridentConfig config = load_config(resolve_config_path("medium"));
  const ModelConfig& m = config.model();
  EXPECT_GE(m.hidden_size(), 1024);
  EXPECT_GE(m.num_hidden_layers(), 8);
  EXPECT_EQ(m.n_routed_experts(), 64);
  EXPECT_GE(m.moe_intermediate_size(), 512);
  EXPECT_GE(m.vocab_size(), 32768);
  EXPECT_EQ(m.scoring_func(), "sigmoid");
  EXPECT_EQ(m.num_nextn_predict_layers(), 1);
}

TEST(Presets, TinyMatchesItsContract) {
  const TridentConfig config = load_config(resolve_config_path("tiny"));
  const ModelConfig& m = config.model();
  EXPECT_EQ(m.vocab_size(), 256);
  EXPECT_EQ(m.hidden_size(), 32);
  EXPECT_EQ(m.num_hidden_layers(), 4);
  EXPECT_EQ(m.first_k_dense_replace(), 2);
  EXPECT_EQ(m.qk_rope_head_dim(), 4);
  EXPECT_EQ(m.n_routed_experts(), 8);
  EXPECT_EQ(m.num_experts_per_tok(), 2);
  EXPECT_EQ(m.num_nextn_predict_layers(), 1);
  EXPECT_EQ(config.train().seq_len(), 16);
  EXPECT_EQ(config.train().steps(), 20);
  // Layouts the layout-invariance tests use must all be valid.
  for (const char* layout :
       {"parallel.dp=2", "parallel.tp=2", "parallel.tp=4", "parallel.pp=2", "parallel.pp=4"}) {
    TridentConfig copy = config;
    apply_override(copy, layout);
    EXPECT_NO_THROW(validate(copy)) << layout;
  }
  TridentConfig moe = config;
  apply_overrides(moe, {"parallel.dp=4", "parallel.ep=4", "parallel.tp=2", "parallel.etp=2",
                        "train.micro_batch=1"});
  EXPECT_NO_THROW(validate(moe, 8));
}

TEST(Defaults, FilledWhereTheFileIsSilent) {
  const TridentConfig config = parse_config_text("parallel { ep: 2 }\n", "inline");
  EXPECT_EQ(config.parallel().ep(), 2);
  EXPECT_EQ(config.parallel().pp(), 1);
  EXPECT_EQ(config.parallel().etp(), 1);
  EXPECT_EQ(config.parallel().schedule(), "1f1b");
  EXPECT_EQ(config.parallel().backend(), "mpi");
  EXPECT_EQ(config.parallel().comm_timeout_s(), 300);
  EXPECT_EQ(config.train().beta1(), 0.9);
  EXPECT_EQ(config.train().beta2(), 0.95);
  EXPECT_EQ(config.train().adam_eps(), 1e-8);
  EXPECT_EQ(config.train().mtp_loss_weight(), 0.3);
  EXPECT_EQ(config.grpo().group_size(), 8);
  EXPECT_EQ(config.grpo().kl_estimator(), "k3");
  EXPECT_EQ(config.grpo().format_weight(), 0.5);
  EXPECT_EQ(config.checkpoint().keep_last(), 3);
  EXPECT_EQ(config.logging().level(), "info");
  EXPECT_NO_THROW(validate(default_config()));
}

TEST(Defaults, ExplicitZeroInTheFileWinsOverADefault) {
  const TridentConfig config = parse_config_text("train { grad_clip: 0 beta1: 0 }", "inline");
  EXPECT_EQ(config.train().grad_clip(), 0.0);
  EXPECT_EQ(config.train().beta1(), 0.0);
}

TEST(Defaults, ListsKeepTheFileOrder) {
  const TridentConfig config = parse_config_text("grpo { stop: \"a\" stop: \"b\" }", "inline");
  ASSERT_EQ(config.grpo().stop_size(), 2);
  EXPECT_EQ(config.grpo().stop(0), "a");
  EXPECT_EQ(config.grpo().stop(1), "b");
}

TEST(TextFormat, ToTextRoundTripsIncludingZeros) {
  TridentConfig config = load_config(resolve_config_path("tiny"));
  apply_overrides(config,
                  {"train.grad_clip=0", "grpo.stop=a\"b,c", "train.seed=18446744073709551615",
                   "train.lr=0.1", "model.rope_scaling.factor=1e-300"});
  const std::string text = to_text(config);
  EXPECT_NE(text.find("grad_clip: 0"), std::string::npos) << text;
  const TridentConfig back = parse_config_text(text, "round-trip");
  std::string diff;
  google::protobuf::util::MessageDifferencer differ;
  differ.ReportDifferencesToString(&diff);
  EXPECT_TRUE(differ.Compare(config, back)) << diff;
}

TEST(PresetPath, PathsPassThroughAndNamesResolve) {
  const std::string tiny = resolve_config_path("tiny");
  EXPECT_TRUE(fs::is_regular_file(tiny)) << tiny;
  EXPECT_EQ(fs::path(tiny).filename(), "tiny.textproto");
  EXPECT_EQ(resolve_config_path(tiny), tiny);
  EXPECT_THROW(resolve_config_path("no/such/file.textproto"), UserError);
}

TEST(PresetPath, MissingPresetListsTheAvailableOnes) {
  trident::testing::expect_user_error([] { resolve_config_path("tinyy"); },
                                      {"'tinyy'", "tiny", "small", "deepseek-v3-671b"});
}

TEST(PresetPath, ConfigDirEnvironmentVariableComesFirst) {
  const fs::path dir = fs::temp_directory_path() / ("trident_presets_" + std::to_string(getpid()));
  fs::create_directories(dir);
  std::ofstream(dir / "mine.textproto") << "model { name: \"mine\" }\n";
  std::ofstream(dir / "tiny.textproto") << "model { name: \"shadow\" }\n";
  setenv("TRIDENT_CONFIG_DIR", dir.c_str(), 1);
  EXPECT_EQ(load_config(resolve_config_path("mine")).model().name(), "mine");
  EXPECT_EQ(load_config(resolve_config_path("tiny")).model().name(), "shadow");
  unsetenv("TRIDENT_CONFIG_DIR");
  EXPECT_EQ(load_config(resolve_config_path("tiny")).model().name(), "tiny");
  fs::remove_all(dir);
}

}  // namespace
}  // namespace trident::config
