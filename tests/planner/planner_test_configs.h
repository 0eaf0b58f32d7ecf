#pragma once
// Whole TridentConfigs for the planner tests, built on the model tests' ModelConfigs.
#include "runtime/config/trident.pb.h"
#include "tests/models/test_configs.h"

namespace trident::models::planner::testing {

// DeepSeek-V3's published training layout: PP16 DualPipe(V), EP64, ZeRO-1, no TP, bf16
// weights, 15360 sequences of 4096 tokens per step, node-limited routing to 4 nodes.
inline config::TridentConfig deepseek_v3_published() {
  config::TridentConfig c;
  *c.mutable_model() = models::testing::deepseek_v3_671b_config();
  config::ParallelConfig* p = c.mutable_parallel();
  p->set_pp(16);
  p->set_tp(1);
  p->set_ep(64);
  p->set_etp(1);
  p->set_zero1(true);
  p->set_schedule("dualpipev");
  p->set_max_nodes_per_token(4);
  config::TrainConfig* t = c.mutable_train();
  t->set_global_batch(15360);
  t->set_micro_batch(1);
  t->set_seq_len(4096);
  t->set_param_dtype("bfloat16");
  return c;
}

// The tiny model on one rank, fp32 weights.
inline config::TridentConfig tiny_single_rank(int64_t batch, int64_t seq) {
  config::TridentConfig c;
  *c.mutable_model() = models::testing::tiny_config();
  c.mutable_train()->set_global_batch(batch);
  c.mutable_train()->set_micro_batch(batch);
  c.mutable_train()->set_seq_len(seq);
  c.mutable_train()->set_param_dtype("float32");
  return c;
}

}  // namespace trident::models::planner::testing
