// Every bad config must be refused with a message that names the field(s) at fault and what
// would be valid. Each row starts from the tiny preset (or from its own textproto), applies the
// overrides, validates, and must fail with every listed substring in the message.
#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

#include "runtime/config/config.h"
#include "runtime/core/error.h"

namespace trident::config {
namespace {

struct BadConfig {
  BadConfig(std::string name_, std::vector<std::string> overrides_,
            std::vector<std::string> expected_, int world_size_ = 0, std::string text_ = "")
      : name(std::move(name_)),
        overrides(std::move(overrides_)),
        expected(std::move(expected_)),
        world_size(world_size_),
        text(std::move(text_)) {}
  std::string name;
  std::vector<std::string> overrides;
  std::vector<std::string> expected;  // each must appear in the error message
  int world_size;
  std::string text;  // replaces the tiny preset when not empty (origin "case.textproto")
};

std::ostream& operator<<(std::ostream& out, const BadConfig& c) { return out << c.name; }

std::string tiny_text() {
  std::ifstream file(resolve_config_path("tiny"));
  std::ostringstream text;
  text << file.rdbuf();
  return text.str();
}

const std::vector<BadConfig>& cases() {
  static const std::vector<BadConfig> table = {
      // Layout against the model.
      {"experts_not_divisible_by_ep",
       {"parallel.dp=3", "parallel.ep=3", "train.global_batch=6", "train.micro_batch=1",
        "grpo.prompts_per_step=3"},
       {"model.n_routed_experts = 8 must be divisible by parallel.ep = 3"}},
      {"heads_not_divisible_by_tp",
       {"parallel.tp=3"},
       {"model.num_attention_heads = 4 must be divisible by parallel.tp = 3"}},
      {"vocab_not_divisible_by_tp",
       {"parallel.tp=4", "model.vocab_size=258"},
       {"model.vocab_size = 258 must be divisible by parallel.tp = 4"}},
      {"dense_ffn_not_divisible_by_tp",
       {"parallel.tp=4", "model.intermediate_size=50"},
       {"model.intermediate_size = 50 must be divisible by parallel.tp = 4"}},
      {"expert_ffn_not_divisible_by_etp",
       {"parallel.dp=4", "parallel.ep=1", "parallel.etp=4", "train.micro_batch=1",
        "model.moe_intermediate_size=18"},
       {"model.moe_intermediate_size = 18 must be divisible by parallel.etp = 4"}},
      {"ep_etp_must_divide_dp_tp",
       {"parallel.ep=2"},
       {"parallel.ep × parallel.etp = 2 must divide parallel.dp × parallel.tp = 1"}},
      {"world_size_mismatch",
       {},
       {"parallel.pp × parallel.dp × parallel.tp", "= 1 must equal", "number of ranks, 4",
        "parallel.dp = 4"},
       4},
      {"zero_size", {"parallel.pp=0"}, {"parallel.pp = 0 must be ≥ 1"}},
      // Router grouping.
      {"topk_group_above_n_group",
       {"model.topk_group=5"},
       {"model.topk_group = 5 must be in [1, model.n_group = 4]"}},
      {"experts_not_divisible_by_groups",
       {"model.n_group=3", "model.topk_group=1"},
       {"model.n_routed_experts = 8 must be divisible by model.n_group = 3"}},
      {"too_many_experts_per_token",
       {"model.num_experts_per_tok=5"},
       {"model.num_experts_per_tok = 5", "model.topk_group × experts per group = 2 × 2 = 4"}},
      {"noaux_tc_needs_two_per_group",
       {"model.n_group=8", "model.topk_group=4"},
       {"model.topk_method = \"noaux_tc\"", "at least 2 experts per group", "8 / 8 = 1"}},
      {"dense_layers_exceed_layers",
       {"model.first_k_dense_replace=5"},
       {"model.first_k_dense_replace = 5 must be in [0, model.num_hidden_layers = 4]"}},
      {"scoring_func",
       {"model.scoring_func=relu"},
       {"model.scoring_func = \"relu\"", "valid values: sigmoid, softmax"}},
      {"topk_method",
       {"model.topk_method=top2"},
       {"model.topk_method = \"top2\"", "valid values: noaux_tc, greedy"}},
      // Attention and positions.
      {"odd_rope_dim", {"model.qk_rope_head_dim=5"}, {"model.qk_rope_head_dim = 5 must be even"}},
      {"no_kv_latent", {"model.kv_lora_rank=0"}, {"model.kv_lora_rank = 0 must be > 0"}},
      {"rms_eps", {"model.rms_norm_eps=0"}, {"model.rms_norm_eps = 0 must be > 0"}},
      {"rope_scaling_type",
       {"model.rope_scaling.type=linear"},
       {"model.rope_scaling.type = \"linear\"", "valid values: \"\", yarn"}},
      {"yarn_factor",
       {"model.rope_scaling.factor=0.5"},
       {"model.rope_scaling.factor = 0.5 must be ≥ 1"}},
      {"seq_len_beyond_positions",
       {"train.seq_len=65"},
       {"train.seq_len = 65 must be in [1, model.max_position_embeddings = 64]"}},
      {"byte_tokenizer_vocab",
       {"model.vocab_size=128"},
       {"data.tokenizer = \"byte\" needs model.vocab_size ≥ 256"}},
      {"tokenizer_neither_byte_nor_json",
       {"data.tokenizer=sentencepiece.model"},
       {"data.tokenizer = \"sentencepiece.model\"",
        "\"byte\" or the path of a Hugging Face "
        "tokenizer.json"}},
      {"prose_tagged_share_above_one",
       {"data.task=arithmetic_prose", "data.prose_tagged_share=1.5"},
       {"data.prose_tagged_share = 1.5 must be in [0, 1]"}},
      {"prose_tagged_share_negative",
       {"data.prose_tagged_share=-0.01"},
       {"data.prose_tagged_share = -0.01 must be in [0, 1]"}},
      {"unknown_task",
       {"data.task=prose"},
       {"data.task = \"prose\"", "arithmetic, arithmetic_prose"}},
      {"torch_dtype",
       {"model.torch_dtype=float16"},
       {"model.torch_dtype = \"float16\"", "float32, bfloat16"}},
      // Pipeline and batch.
      {"unknown_schedule",
       {"parallel.schedule=gpipe"},
       {"parallel.schedule = \"gpipe\"", "valid values: 1f1b, interleaved, zb-h1, dualpipev"}},
      {"dualpipev_odd_pp",
       {"parallel.schedule=dualpipev", "parallel.pp=3"},
       {"parallel.schedule = \"dualpipev\" needs an even parallel.pp ≥ 2, got parallel.pp = 3"}},
      {"dualpipev_few_microbatches",
       {"parallel.schedule=dualpipev", "parallel.pp=2", "train.micro_batch=4"},
       {"at least 2 × parallel.pp = 4 micro-batches per step, got 2"}},
      {"interleaved_needs_virtual_stages",
       {"parallel.schedule=interleaved", "parallel.pp=2"},
       {"parallel.virtual_stages ≥ 2"}},
      {"virtual_stages_without_interleaving",
       {"parallel.virtual_stages=2"},
       {"parallel.virtual_stages = 2", "\"interleaved\""}},
      {"more_stages_than_layers",
       {"parallel.pp=8", "train.micro_batch=1"},
       {"model.num_hidden_layers + model.num_nextn_predict_layers = 5",
        "pipeline model chunks = 8"}},
      {"global_batch_not_divisible",
       {"train.global_batch=7"},
       {"train.global_batch = 7 must be divisible by train.micro_batch × parallel.dp = 2 × 1 = 2"}},
      {"microbatches_disagree",
       {"parallel.microbatches=3"},
       {"parallel.microbatches = 3", "= 4", "0 to derive it"}},
      // Optimiser and run.
      {"beta2_is_one", {"train.beta2=1"}, {"train.beta2 = 1 must be in [0, 1)"}},
      {"min_lr_above_lr",
       {"train.min_lr=1"},
       {"train.min_lr = 1 must be in [0, train.lr = 0.003]"}},
      {"warmup_beyond_steps",
       {"train.warmup_steps=30"},
       {"train.warmup_steps = 30 must be in [0, train.steps = 20]"}},
      {"negative_lr", {"train.lr=-1", "train.min_lr=0"}, {"train.lr = -1 must be ≥ 0"}},
      {"mode", {"train.mode=rl"}, {"train.mode = \"rl\"", "valid values: pretrain, sft"}},
      {"param_dtype",
       {"train.param_dtype=fp8"},
       {"train.param_dtype = \"fp8\"", "valid values: float32, bfloat16"}},
      {"activation_dtype",
       {"train.activation_dtype=float16"},
       {"train.activation_dtype = \"float16\"", "valid values: float32, bfloat16"}},
      {"moment_dtype",
       {"train.moment_dtype=fp8"},
       {"train.moment_dtype = \"fp8\"", "valid values: float32, bfloat16"}},
      {"backend",
       {"parallel.backend=gloo"},
       {"parallel.backend = \"gloo\"", "valid values: mpi, nccl"}},
      {"capacity_factor",
       {"parallel.capacity_factor=0.5"},
       {"parallel.capacity_factor = 0.5 must be 0 (dropless) or ≥ 1"}},
      {"logging_level",
       {"logging.level=verbose"},
       {"logging.level = \"verbose\"", "valid values: debug, info, warn, error, off"}},
      // GRPO.
      {"group_of_one", {"grpo.group_size=1"}, {"grpo.group_size = 1 must be ≥ 2"}},
      {"zero_temperature", {"grpo.temperature=0"}, {"grpo.temperature = 0 must be > 0"}},
      {"top_p_zero", {"grpo.top_p=0"}, {"grpo.top_p = 0 must be in (0, 1]"}},
      {"kl_estimator",
       {"grpo.kl_estimator=k4"},
       {"grpo.kl_estimator = \"k4\"", "valid values: k1, k2, k3"}},
      {"loss_type", {"grpo.loss_type=ppo"}, {"grpo.loss_type = \"ppo\"", "grpo, bnpo, dr_grpo"}},
      {"advantage_scale",
       {"grpo.advantage_scale=std"},
       {"grpo.advantage_scale = \"std\"", "valid values: group, batch, none"}},
      {"negative_epsilon", {"grpo.epsilon_high=-0.1"}, {"grpo.epsilon_high = -0.1 must be ≥ 0"}},
      {"completions_not_divisible_by_dp",
       {"parallel.dp=8", "grpo.prompts_per_step=3", "train.micro_batch=1"},
       {"grpo.prompts_per_step × grpo.group_size = 12 must be divisible by parallel.dp = 8"}},
      // Textproto and --set mistakes.
      {"unknown_field_in_textproto",
       {},
       {"case.textproto:3:", "\"hidden_sizee\"", "valid fields: name, vocab_size, hidden_size",
        "did you mean \"hidden_size\""},
       0,
       "model {\n  vocab_size: 256\n  hidden_sizee: 32\n}\n"},
      {"unknown_section_in_textproto",
       {},
       {"case.textproto:2:", "\"paralel\"", "parallel"},
       0,
       "# a comment\nparalel { pp: 2 }\n"},
      {"syntax_error_in_textproto",
       {},
       {"case.textproto:3:1", "Expected identifier"},
       0,
       "train {\n  steps: 10 }\n}\n"},
      {"wrong_type_in_textproto", {}, {"case.textproto:1:", "pp"}, 0, "parallel { pp: \"two\" }\n"},
      {"duplicate_field_in_textproto",
       {},
       {"case.textproto:1:", "steps"},
       0,
       "train { steps: 10 steps: 20 }\n"},
      {"bad_override_path",
       {"parallel.epp=2"},
       {"unknown config field 'parallel.epp'",
        "did you mean 'parallel.pp', 'parallel.ep' or 'parallel.etp'?",
        "valid fields at parallel: pp, dp, tp, ep, etp"}},
      {"bad_override_section",
       {"paralel.ep=2"},
       {"unknown config field 'paralel'", "valid fields at the top level: model, parallel"}},
      {"override_through_a_scalar",
       {"parallel.ep.size=2"},
       {"parallel.ep holds a value (integer), it has no field 'size'"}},
      {"override_a_whole_message",
       {"model.rope_scaling=yarn"},
       {"model.rope_scaling is a message", "type, factor"}},
      {"override_without_equals", {"parallel.ep"}, {"path.to.field=value", "'parallel.ep'"}},
      {"bad_int_value", {"parallel.ep=four"}, {"parallel.ep takes an integer", "'four'"}},
      {"bad_double_value", {"train.lr=fast"}, {"train.lr takes a number", "'fast'"}},
      {"bad_bool_value",
       {"parallel.zero1=yes"},
       {"parallel.zero1 takes a bool (true, false, 1 or 0)"}},
      {"bad_uint_value", {"train.seed=-5"}, {"train.seed takes a non-negative integer"}},
  };
  return table;
}

class BadConfigTest : public ::testing::TestWithParam<BadConfig> {};

TEST_P(BadConfigTest, IsRefusedWithAMessageNamingTheField) {
  const BadConfig& c = GetParam();
  try {
    TridentConfig config = c.text.empty() ? parse_config_text(tiny_text(), "tiny.textproto")
                                          : parse_config_text(c.text, "case.textproto");
    apply_overrides(config, c.overrides);
    validate(config, c.world_size);
    FAIL() << "accepted a bad config";
  } catch (const UserError& e) {
    const std::string what = e.what();
    for (const std::string& needle : c.expected) {
      EXPECT_NE(what.find(needle), std::string::npos) << "missing '" << needle << "' in:\n" << what;
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Config, BadConfigTest, ::testing::ValuesIn(cases()),
                         [](const ::testing::TestParamInfo<BadConfig>& param) {
                           return param.param.name;
                         });

// The table's base must itself be valid, or every row would pass for the wrong reason.
TEST(BadConfigBase, TinyIsValid) {
  EXPECT_NO_THROW(validate(parse_config_text(tiny_text(), "tiny.textproto"), 1));
}

}  // namespace
}  // namespace trident::config
