// Optimiser, GRPO, data, checkpoint and logging settings.
#include <cmath>

#include "runtime/config/dtype_names.h"
#include "runtime/config/problems.h"

namespace trident::config::detail {

namespace {

void check_train(const TridentConfig& config, Problems& p) {
  const TrainConfig& t = config.train();
  p.require(t.steps() >= 1, "train.steps = ", t.steps(), " must be ≥ 1");
  p.require(t.global_batch() >= 1, "train.global_batch = ", t.global_batch(), " must be ≥ 1");
  p.require(t.micro_batch() >= 1, "train.micro_batch = ", t.micro_batch(), " must be ≥ 1");
  p.require(t.seq_len() >= 1 && t.seq_len() <= config.model().max_position_embeddings(),
            "train.seq_len = ", t.seq_len(), " must be in [1, model.max_position_embeddings = ",
            config.model().max_position_embeddings(), "]");
  p.require(t.lr() >= 0, "train.lr = ", t.lr(), " must be ≥ 0");
  p.require(t.min_lr() >= 0 && t.min_lr() <= t.lr(), "train.min_lr = ", t.min_lr(),
            " must be in [0, train.lr = ", t.lr(), "]");
  p.require(t.warmup_steps() >= 0 && t.warmup_steps() <= t.steps(),
            "train.warmup_steps = ", t.warmup_steps(), " must be in [0, train.steps = ", t.steps(),
            "]");
  p.require(t.weight_decay() >= 0, "train.weight_decay = ", t.weight_decay(), " must be ≥ 0");
  p.require(t.beta1() >= 0 && t.beta1() < 1, "train.beta1 = ", t.beta1(), " must be in [0, 1)");
  p.require(t.beta2() >= 0 && t.beta2() < 1, "train.beta2 = ", t.beta2(), " must be in [0, 1)");
  p.require(t.adam_eps() > 0, "train.adam_eps = ", t.adam_eps(), " must be > 0");
  p.require(t.grad_clip() >= 0, "train.grad_clip = ", t.grad_clip(), " must be ≥ 0 (0: off)");
  p.require(t.mtp_loss_weight() >= 0, "train.mtp_loss_weight = ", t.mtp_loss_weight(),
            " must be ≥ 0");
  p.require(t.aux_loss_alpha() >= 0, "train.aux_loss_alpha = ", t.aux_loss_alpha(),
            " must be ≥ 0 (0: off)");
  const ModelConfig& m = config.model();
  if (m.device_balance_weight() > 0 || m.comm_balance_weight() > 0) {
    p.require(t.aux_loss_alpha() > 0,
              "model.device_balance_weight / model.comm_balance_weight scale the device-level and "
              "communication balance losses relative to train.aux_loss_alpha, which is 0: set "
              "train.aux_loss_alpha > 0 (their coefficients are train.aux_loss_alpha × weight)");
  }
  p.require(m.seq_aux() || t.aux_loss_alpha() == 0,
            "model.seq_aux = false asks for balance losses over a whole batch, which depends on "
            "how the data-parallel layout cuts the batch; Trident computes them per sequence: set "
            "model.seq_aux = true (or train.aux_loss_alpha = 0)");
  p.require(t.bias_update_speed() >= 0, "train.bias_update_speed = ", t.bias_update_speed(),
            " must be ≥ 0 (0: router biases stay fixed)");
  p.require_one_of("train.mode", t.mode(), {"pretrain", "sft"});
  p.require_one_of("train.param_dtype", t.param_dtype(), storage_dtype_names());
  p.require_one_of("train.activation_dtype", t.activation_dtype(), storage_dtype_names());
  p.require_one_of("train.moment_dtype", t.moment_dtype(), storage_dtype_names());
  p.require_one_of("train.device", t.device(), {"cpu", "cuda"});
  p.require(t.eval_every() >= 0, "train.eval_every = ", t.eval_every(), " must be ≥ 0 (0: off)");
  p.require(t.log_every() >= 1, "train.log_every = ", t.log_every(), " must be ≥ 1");
  p.require_one_of("train.nonfinite", t.nonfinite(), {"stop", "skip"});
  p.require(t.max_skipped_steps() >= 0, "train.max_skipped_steps = ", t.max_skipped_steps(),
            " must be ≥ 0");
}

void check_grpo(const TridentConfig& config, Problems& p) {
  const GrpoConfig& g = config.grpo();
  p.require(g.steps() >= 1, "grpo.steps = ", g.steps(), " must be ≥ 1");
  p.require(g.prompts_per_step() >= 1, "grpo.prompts_per_step = ", g.prompts_per_step(),
            " must be ≥ 1");
  p.require(g.group_size() >= 2, "grpo.group_size = ", g.group_size(),
            " must be ≥ 2 (the group is its own baseline)");
  p.require(
      g.max_new_tokens() >= 1 && g.max_new_tokens() < config.model().max_position_embeddings(),
      "grpo.max_new_tokens = ", g.max_new_tokens(),
      " must be in [1, model.max_position_embeddings = ", config.model().max_position_embeddings(),
      ")");
  p.require(g.temperature() > 0, "grpo.temperature = ", g.temperature(), " must be > 0");
  p.require(g.top_p() > 0 && g.top_p() <= 1, "grpo.top_p = ", g.top_p(), " must be in (0, 1]");
  p.require(g.top_k() >= 0, "grpo.top_k = ", g.top_k(), " must be ≥ 0 (0: off)");
  for (const std::string& stop : g.stop()) {
    p.require(!stop.empty(), "grpo.stop contains an empty string; every stop string needs text");
  }
  p.require(g.lr() >= 0, "grpo.lr = ", g.lr(), " must be ≥ 0");
  p.require(g.warmup_steps() >= 0, "grpo.warmup_steps = ", g.warmup_steps(), " must be ≥ 0");
  p.require(g.epsilon_low() >= 0 && g.epsilon_low() < 1, "grpo.epsilon_low = ", g.epsilon_low(),
            " must be in [0, 1)");
  p.require(g.epsilon_high() >= 0, "grpo.epsilon_high = ", g.epsilon_high(), " must be ≥ 0");
  p.require(g.beta() >= 0, "grpo.beta = ", g.beta(), " must be ≥ 0 (0: no reference model)");
  p.require_one_of("grpo.kl_estimator", g.kl_estimator(), {"k1", "k2", "k3"});
  p.require_one_of("grpo.loss_type", g.loss_type(), {"grpo", "bnpo", "dr_grpo"});
  p.require_one_of("grpo.advantage_scale", g.advantage_scale(), {"group", "batch", "none"});
  p.require(g.updates_per_batch() >= 1, "grpo.updates_per_batch = ", g.updates_per_batch(),
            " must be ≥ 1");
  p.require(g.ref_refresh_every() >= 0, "grpo.ref_refresh_every = ", g.ref_refresh_every(),
            " must be ≥ 0 (0: never)");
  p.require(g.accuracy_weight() >= 0, "grpo.accuracy_weight = ", g.accuracy_weight(),
            " must be ≥ 0");
  p.require(g.format_weight() >= 0, "grpo.format_weight = ", g.format_weight(), " must be ≥ 0");
  p.require(g.reward_timeout_s() > 0, "grpo.reward_timeout_s = ", g.reward_timeout_s(),
            " must be > 0");
  p.require(g.eval_prompts() >= 0, "grpo.eval_prompts = ", g.eval_prompts(), " must be ≥ 0");
}

void check_data(const TridentConfig& config, Problems& p) {
  const DataConfig& d = config.data();
  p.require_one_of("data.task", d.task(), {"arithmetic", "arithmetic_prose"});
  p.require(
      std::isfinite(d.prose_tagged_share()) && d.prose_tagged_share() >= 0 &&
          d.prose_tagged_share() <= 1,
      "data.prose_tagged_share = ", d.prose_tagged_share(),
      " must be in [0, 1] (the share of tagged documents of data.task = \"arithmetic_prose\")");
  p.require(d.task_digits() >= 1 && d.task_digits() <= 9, "data.task_digits = ", d.task_digits(),
            " must be in [1, 9]");
  p.require(d.eval_samples() >= 0, "data.eval_samples = ", d.eval_samples(), " must be ≥ 0");
  // The file itself is read only by the commands that tokenize text (trident data, tokenize),
  // which report a missing one; training reads token files and needs only their vocabulary.
  const std::string& tokenizer = d.tokenizer();
  const bool json_path = tokenizer.size() > 5 && tokenizer.ends_with(".json");
  p.require(tokenizer == "byte" || json_path, "data.tokenizer = \"", tokenizer,
            "\" must be \"byte\" or the path of a Hugging Face tokenizer.json");
  if (d.tokenizer() == "byte") {
    p.require(config.model().vocab_size() >= 256,
              "data.tokenizer = \"byte\" needs "
              "model.vocab_size ≥ 256, got ",
              config.model().vocab_size());
  }
}

void check_checkpoint_and_logging(const TridentConfig& config, Problems& p) {
  const CheckpointConfig& c = config.checkpoint();
  p.require(c.every() >= 0, "checkpoint.every = ", c.every(),
            " must be ≥ 0 (0: save only at the end)");
  p.require(c.keep_last() >= 0, "checkpoint.keep_last = ", c.keep_last(),
            " must be ≥ 0 (0: keep all)");
  p.require(c.resume() != "auto" || !c.dir().empty(),
            "checkpoint.resume = \"auto\" needs checkpoint.dir to name the directory to search");
  p.require_one_of("logging.level", config.logging().level(),
                   {"debug", "info", "warn", "error", "off"});
}

}  // namespace

void check_run(const TridentConfig& config, Problems& p) {
  check_train(config, p);
  check_grpo(config, p);
  check_data(config, p);
  check_checkpoint_and_logging(config, p);
}

}  // namespace trident::config::detail
