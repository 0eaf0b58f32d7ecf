// Defaults for every field. Proto3 scalars have no presence, so a preset is merged on top of
// this message: whatever the file leaves out keeps the value chosen here. Model defaults are
// DeepSeek-V3's published architecture (as the Hugging Face config class defaults), with plain
// RoPE; training defaults follow the DeepSeek-V3 report; GRPO defaults follow DeepSeekMath.
#include "runtime/config/config.h"

namespace trident::config {

namespace {

ModelConfig default_model() {
  ModelConfig m;
  m.set_name("deepseek-v3");
  m.set_vocab_size(129280);
  m.set_hidden_size(7168);
  m.set_intermediate_size(18432);
  m.set_moe_intermediate_size(2048);
  m.set_num_hidden_layers(61);
  m.set_first_k_dense_replace(3);
  m.set_moe_layer_freq(1);
  m.set_num_attention_heads(128);
  m.set_q_lora_rank(1536);
  m.set_kv_lora_rank(512);
  m.set_qk_nope_head_dim(128);
  m.set_qk_rope_head_dim(64);
  m.set_v_head_dim(128);
  m.set_n_routed_experts(256);
  m.set_n_shared_experts(1);
  m.set_num_experts_per_tok(8);
  m.set_n_group(8);
  m.set_topk_group(4);
  m.set_routed_scaling_factor(2.5);
  m.set_scoring_func("sigmoid");
  m.set_topk_method("noaux_tc");
  m.set_norm_topk_prob(true);
  m.set_rms_norm_eps(1e-6);
  m.set_rope_theta(10000.0);
  // Plain RoPE unless a preset sets type "yarn"; the other values are the Hugging Face YaRN
  // defaults (mscale_all_dim 0 = no attention-scale correction), used once type is set.
  RopeScaling* rope = m.mutable_rope_scaling();
  rope->set_type("");
  rope->set_factor(1.0);
  rope->set_original_max_position_embeddings(4096);
  rope->set_beta_fast(32.0);
  rope->set_beta_slow(1.0);
  rope->set_mscale(1.0);
  rope->set_mscale_all_dim(0.0);
  m.set_max_position_embeddings(4096);
  m.set_num_nextn_predict_layers(1);
  m.set_initializer_range(0.006);
  m.set_tie_word_embeddings(false);
  m.set_torch_dtype("float32");
  m.set_model_type("deepseek_v3");
  m.set_seq_aux(true);
  m.set_device_balance_weight(0.0);
  m.set_comm_balance_weight(0.0);
  return m;
}

ParallelConfig default_parallel() {
  ParallelConfig p;
  p.set_pp(1);
  p.set_dp(1);
  p.set_tp(1);
  p.set_ep(1);
  p.set_etp(1);
  p.set_zero1(false);
  p.set_schedule("1f1b");
  p.set_virtual_stages(1);
  p.set_microbatches(0);  // derived: train.global_batch / (train.micro_batch × parallel.dp)
  p.set_a2a_chunks(1);
  p.set_ranks_per_node(0);
  p.set_max_nodes_per_token(0);
  p.set_capacity_factor(0.0);
  p.set_dp_bucket_mb(25);
  p.set_backend("mpi");
  p.set_comm_timeout_s(300.0);
  return p;
}

TrainConfig default_train() {
  TrainConfig t;
  t.set_steps(1000);
  t.set_global_batch(8);
  t.set_micro_batch(1);
  t.set_seq_len(128);
  t.set_lr(3e-4);
  t.set_min_lr(3e-5);
  t.set_warmup_steps(0);
  t.set_weight_decay(0.1);
  t.set_beta1(0.9);
  t.set_beta2(0.95);
  t.set_adam_eps(1e-8);
  t.set_grad_clip(1.0);
  t.set_mtp_loss_weight(0.3);
  t.set_aux_loss_alpha(0.0);
  t.set_bias_update_speed(0.001);
  t.set_seed(1234);
  t.set_mode("pretrain");
  t.set_param_dtype("float32");
  t.set_device("cpu");
  t.set_activation_dtype("float32");
  t.set_moment_dtype("float32");
  t.set_eval_every(0);
  t.set_log_every(1);
  t.set_nonfinite("stop");
  t.set_max_skipped_steps(10);
  return t;
}

GrpoConfig default_grpo() {
  GrpoConfig g;
  g.set_steps(100);
  g.set_prompts_per_step(8);
  g.set_group_size(8);
  g.set_max_new_tokens(64);
  g.set_temperature(1.0);
  g.set_top_p(1.0);
  g.set_top_k(0);  // off
  // `stop` stays empty: generation ends at max_new_tokens unless a preset lists stop strings.
  g.set_lr(1e-6);
  g.set_warmup_steps(0);
  g.set_epsilon_low(0.2);
  g.set_epsilon_high(0.2);
  g.set_beta(0.04);
  g.set_kl_estimator("k3");
  g.set_loss_type("grpo");
  g.set_advantage_scale("group");
  g.set_sample_std(false);
  g.set_updates_per_batch(1);
  g.set_filter_zero_variance(false);
  g.set_ref_refresh_every(0);
  g.set_mask_truncated(false);
  g.set_accuracy_weight(1.0);
  g.set_format_weight(0.5);
  g.set_reward_command("");
  g.set_reward_timeout_s(60.0);
  g.set_eval_prompts(64);
  return g;
}

DataConfig default_data() {
  DataConfig d;
  d.set_train_path("");
  d.set_eval_path("");
  d.set_task("arithmetic");
  d.set_task_digits(2);
  d.set_eval_samples(64);
  d.set_tokenizer("byte");
  d.set_prose_tagged_share(0.04);
  return d;
}

CheckpointConfig default_checkpoint() {
  CheckpointConfig c;
  c.set_dir("checkpoints");
  c.set_every(0);
  c.set_keep_last(3);
  c.set_resume("");
  return c;
}

LoggingConfig default_logging() {
  LoggingConfig l;
  l.set_level("info");
  l.set_all_ranks(false);
  return l;
}

}  // namespace

TridentConfig default_config() {
  TridentConfig config;
  *config.mutable_model() = default_model();
  *config.mutable_parallel() = default_parallel();
  *config.mutable_train() = default_train();
  *config.mutable_grpo() = default_grpo();
  *config.mutable_data() = default_data();
  *config.mutable_checkpoint() = default_checkpoint();
  *config.mutable_logging() = default_logging();
  return config;
}

}  // namespace trident::config
