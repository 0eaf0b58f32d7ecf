#include "runtime/train/grpo/pipeline_generate.h"

#include "runtime/io/tokenizer.h"

namespace trident::train::grpo {

namespace {

struct Row {
  size_t completion = 0;  // index into the result
  bool done = false;
};

Tensor staged_decode_step(StagedPolicy& policy, const std::vector<int32_t>& ids, int64_t rows,
                          int64_t n, const ops::cpu::RopeTable& rope,
                          std::vector<models::MlaCache>& caches, ForwardLockstep* lockstep) {
  if (lockstep != nullptr) lockstep->before_forward();
  return policy.decode(ids, rows, n, rope, caches);
}

// Decodes every request of one prompt length together through the stages.
void generate_bucket(StagedPolicy& policy, const GenerationBucket& bucket,
                     const SamplingOptions& options, ForwardLockstep* lockstep,
                     std::vector<Completion>& out) {
  models::DeepSeekV3Model& model = policy.model();
  const int64_t prompt_len = bucket.prompt_len;
  const std::vector<int32_t>& ids = bucket.ids;
  std::vector<Row> rows;
  for (const size_t completion : bucket.rows) rows.push_back(Row{completion, false});
  const int64_t batch = static_cast<int64_t>(rows.size());
  const int64_t capacity = prompt_len + options.max_new_tokens;
  const ops::cpu::RopeTable& rope = *model.sequence_layout(1, capacity).rope;
  std::vector<models::MlaCache> caches;  // full size for this stage's layers only
  for (int64_t l = 0; l < model.num_layers(); ++l) {
    const bool mine = model.holding().holds_layer(l);
    caches.emplace_back(mine ? batch : 1, mine ? capacity : 1, model.dims());
  }

  Tensor logits = staged_decode_step(policy, ids, batch, prompt_len, rope, caches, lockstep);
  for (int64_t step = 0; step < options.max_new_tokens; ++step) {
    // The last stage samples; every stage then applies the same tokens.
    std::vector<int32_t> picked(static_cast<size_t>(batch), io::ByteTokenizer::kEos);
    if (policy.last_stage()) {
      const int64_t vocab = logits.size(1);
      for (int64_t b = 0; b < batch; ++b) {
        const Row& row = rows[static_cast<size_t>(b)];
        if (row.done) continue;
        Completion& c = out[row.completion];
        const float* row_logits = logits.data<float>() + b * vocab;
        if (options.record_logits) c.step_logits.emplace_back(row_logits, row_logits + vocab);
        picked[static_cast<size_t>(b)] =
            pick_token(c, row_logits, vocab, prompt_len + step, options);
      }
    }
    picked = policy.from_last_stage(std::move(picked));
    std::vector<int32_t> next(static_cast<size_t>(batch), io::ByteTokenizer::kEos);
    bool any_active = false;
    for (int64_t b = 0; b < batch; ++b) {
      Row& row = rows[static_cast<size_t>(b)];
      if (row.done) continue;
      next[static_cast<size_t>(b)] = picked[static_cast<size_t>(b)];
      row.done = append_token(out[row.completion], picked[static_cast<size_t>(b)], options);
      if (!row.done) any_active = true;
    }
    if (!any_active || step + 1 == options.max_new_tokens) break;
    logits = staged_decode_step(policy, next, batch, 1, rope, caches, lockstep);
  }
}

}  // namespace

std::vector<Completion> generate_staged(StagedPolicy& policy,
                                        const std::vector<GenerationRequest>& requests,
                                        const SamplingOptions& options,
                                        ForwardLockstep* lockstep) {
  if (!policy.pipelined()) return generate(policy.model(), requests, options, lockstep);
  GenerationPlan plan = plan_generation(requests, options);
  for (const GenerationBucket& bucket : plan.buckets)
    generate_bucket(policy, bucket, options, lockstep, plan.completions);
  if (lockstep != nullptr) lockstep->finish([&policy] { policy.filler_forward(); });
  return std::move(plan.completions);
}

}  // namespace trident::train::grpo
