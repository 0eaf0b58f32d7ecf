// --set overrides: one test per field type, plus the nested and list cases.
#include <gtest/gtest.h>

#include "runtime/config/config.h"
#include "runtime/core/error.h"

namespace trident::config {
namespace {

TEST(Overrides, Int64) {
  TridentConfig config = default_config();
  apply_override(config, "parallel.ep=4");
  EXPECT_EQ(config.parallel().ep(), 4);
  apply_override(config, " parallel.pp = 16 ");
  EXPECT_EQ(config.parallel().pp(), 16);
  apply_override(config, "parallel.ranks_per_node=-0");
  EXPECT_EQ(config.parallel().ranks_per_node(), 0);
}

TEST(Overrides, Uint64) {
  TridentConfig config = default_config();
  apply_override(config, "train.seed=18446744073709551615");
  EXPECT_EQ(config.train().seed(), 18446744073709551615ULL);
  EXPECT_THROW(apply_override(config, "train.seed=-1"), UserError);
}

TEST(Overrides, Double) {
  TridentConfig config = default_config();
  apply_override(config, "train.lr=1e-4");
  EXPECT_EQ(config.train().lr(), 1e-4);
  apply_override(config, "parallel.capacity_factor=1.25");
  EXPECT_EQ(config.parallel().capacity_factor(), 1.25);
  apply_override(config, "train.min_lr=0");
  EXPECT_EQ(config.train().min_lr(), 0.0);
}

TEST(Overrides, Bool) {
  TridentConfig config = default_config();
  for (const auto& [text, expected] :
       {std::pair<const char*, bool>{"true", true}, {"false", false}, {"1", true}, {"0", false}}) {
    apply_override(config, std::string("parallel.zero1=") + text);
    EXPECT_EQ(config.parallel().zero1(), expected) << text;
  }
}

TEST(Overrides, String) {
  TridentConfig config = default_config();
  apply_override(config, "parallel.schedule=zb-h1");
  EXPECT_EQ(config.parallel().schedule(), "zb-h1");
  apply_override(config, "checkpoint.dir=/tmp/a=b");  // only the first '=' separates
  EXPECT_EQ(config.checkpoint().dir(), "/tmp/a=b");
  apply_override(config, "model.rope_scaling.type=");
  EXPECT_EQ(config.model().rope_scaling().type(), "");
}

TEST(Overrides, NestedMessageField) {
  TridentConfig config = default_config();
  apply_override(config, "model.rope_scaling.factor=2.5");
  EXPECT_EQ(config.model().rope_scaling().factor(), 2.5);
}

TEST(Overrides, RepeatedStringIsCommaSeparatedAndReplaces) {
  TridentConfig config = default_config();
  apply_override(config, "grpo.stop=</answer>,\n\n");
  ASSERT_EQ(config.grpo().stop_size(), 2);
  EXPECT_EQ(config.grpo().stop(0), "</answer>");
  apply_override(config, "grpo.stop=x");
  ASSERT_EQ(config.grpo().stop_size(), 1);
  EXPECT_EQ(config.grpo().stop(0), "x");
  apply_override(config, "grpo.stop=");
  EXPECT_EQ(config.grpo().stop_size(), 0);
}

TEST(Overrides, ManyInOrder) {
  TridentConfig config = default_config();
  apply_overrides(config, {"parallel.dp=2", "parallel.dp=8", "train.mode=sft"});
  EXPECT_EQ(config.parallel().dp(), 8);
  EXPECT_EQ(config.train().mode(), "sft");
}

TEST(Overrides, FailureLeavesOtherFieldsAlone) {
  TridentConfig config = default_config();
  EXPECT_THROW(apply_override(config, "parallel.ep=2x"), UserError);
  EXPECT_EQ(config.parallel().ep(), 1);
  EXPECT_THROW(apply_override(config, "parallel.ep=99999999999999999999"), UserError);
  EXPECT_EQ(config.parallel().ep(), 1);
}

}  // namespace
}  // namespace trident::config
