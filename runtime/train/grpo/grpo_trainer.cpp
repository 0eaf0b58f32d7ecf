#include "runtime/train/grpo/grpo_trainer.h"

#include <chrono>
#include <cmath>

#include "runtime/io/tokenizer.h"
#include "runtime/train/grpo/policy.h"
#include "runtime/train/grpo/scoring.h"

namespace trident::train::grpo {

GrpoOptions grpo_options(const config::TridentConfig& config) {
  const config::GrpoConfig& g = config.grpo();
  const config::TrainConfig& t = config.train();
  GrpoOptions o;
  o.prompts_per_step = g.prompts_per_step();
  o.group_size = g.group_size();
  o.sampling.temperature = g.temperature();
  o.sampling.top_p = g.top_p();
  o.sampling.top_k = g.top_k();
  o.sampling.max_new_tokens = g.max_new_tokens();
  o.sampling.stop.assign(g.stop().begin(), g.stop().end());
  o.sampling.seed = t.seed();
  o.advantages.scale = parse_advantage_scale(g.advantage_scale());
  o.advantages.sample_std = g.sample_std();
  o.objective.epsilon_low = g.epsilon_low();
  o.objective.epsilon_high = g.epsilon_high();
  o.objective.beta = g.beta();
  o.objective.kl = parse_kl_estimator(g.kl_estimator());
  o.loss_type = parse_loss_type(g.loss_type());
  o.updates_per_batch = std::max<int64_t>(1, g.updates_per_batch());
  o.filter_zero_variance = g.filter_zero_variance();
  o.ref_refresh_every = g.ref_refresh_every();
  o.mask_truncated = g.mask_truncated();
  o.reward_weights = RuleRewardWeights{g.accuracy_weight(), g.format_weight()};
  o.reward_command = g.reward_command();
  o.reward_timeout_s = g.reward_timeout_s() > 0 ? g.reward_timeout_s() : 60.0;
  o.lr = g.lr();
  o.adam = AdamWSettings{t.beta1(), t.beta2(), t.adam_eps(), t.weight_decay()};
  o.grad_clip = t.grad_clip();
  o.task.digits =
      static_cast<int>(config.data().task_digits() > 0 ? config.data().task_digits() : 3);
  o.seed = t.seed();
  return o;
}

std::vector<GrpoPrompt> arithmetic_prompts(uint64_t seed, io::Split split, uint64_t first,
                                           int64_t count, const io::ArithmeticOptions& task) {
  std::vector<GrpoPrompt> out;
  for (int64_t i = 0; i < count; ++i) {
    const uint64_t index = first + static_cast<uint64_t>(i);
    const io::ArithmeticProblem p = io::make_problem(seed, split, index, task);
    out.push_back(GrpoPrompt{index, p.prompt, p.answer});
  }
  return out;
}

GrpoTrainer::GrpoTrainer(models::DeepSeekV3Model& policy, GrpoOptions options)
    : policy_(&policy), options_(std::move(options)) {
  TRIDENT_USER_CHECK(options_.group_size >= 2, "grpo.group_size = ", options_.group_size,
                     " must be ≥ 2 (the group is the baseline)");
  const int64_t n = policy.params().numel();
  exp_avg_ = Tensor::zeros({n});
  exp_avg_sq_ = Tensor::zeros({n});
  if (options_.objective.beta != 0.0) {
    reference_ = std::make_unique<models::DeepSeekV3Model>(policy.config(), options_.seed);
    refresh_reference();
  }
}

void GrpoTrainer::refresh_reference() {
  Tensor values = reference_->params().flat_values();
  values.copy_from(policy_->params().flat_values());
}

GrpoStepMetrics GrpoTrainer::step(int64_t step) {
  const uint64_t first =
      static_cast<uint64_t>(step - 1) * static_cast<uint64_t>(options_.prompts_per_step);
  return this->step(step, arithmetic_prompts(options_.seed, io::Split::Train, first,
                                             options_.prompts_per_step, options_.task));
}

namespace {
using Clock = std::chrono::steady_clock;
double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}
}  // namespace

GrpoStepMetrics GrpoTrainer::step(int64_t step, const std::vector<GrpoPrompt>& prompts) {
  GrpoStepMetrics m;
  m.step = step;
  const int64_t G = options_.group_size;
  const auto rollout_start = Clock::now();
  if (reference_ && options_.ref_refresh_every > 0 && step > 1 &&
      (step - 1) % options_.ref_refresh_every == 0) {
    refresh_reference();
  }

  // --- rollout ---
  std::vector<GenerationRequest> requests;
  for (const GrpoPrompt& p : prompts) {
    requests.push_back(GenerationRequest{p.id, io::ByteTokenizer::encode(p.text), G});
  }
  const std::vector<Completion> completions = generate(*policy_, requests, options_.sampling);
  const size_t N = completions.size();

  std::vector<RewardInput> inputs;
  std::vector<double> rewards(N);
  for (size_t i = 0; i < N; ++i) {
    const GrpoPrompt& p = prompts[i / static_cast<size_t>(G)];
    inputs.push_back(RewardInput{p.text, completions[i].text, p.reference});
    const RuleReward rule = rule_reward(inputs.back(), options_.reward_weights);
    rewards[i] = rule.reward;
    m.accuracy += rule.correct ? 1.0 : 0.0;
    m.format_rate += rule.format ? 1.0 : 0.0;
    m.completion_length += static_cast<double>(completions[i].tokens.size());
    m.truncated_fraction += completions[i].truncated() ? 1.0 : 0.0;
  }
  if (!options_.reward_command.empty()) {
    rewards = external_rewards(options_.reward_command, inputs, options_.reward_timeout_s);
  }
  const double count = static_cast<double>(N);
  m.accuracy /= count, m.format_rate /= count, m.completion_length /= count;
  m.truncated_fraction /= count;
  for (const double r : rewards) m.reward += r / count;
  for (const double r : rewards) m.reward_std += (r - m.reward) * (r - m.reward) / count;
  m.reward_std = std::sqrt(m.reward_std);

  const std::vector<double> advantages = group_advantages(rewards, G, options_.advantages);
  const std::vector<bool> flat = zero_variance_groups(rewards, G);

  // Groups that take part in the update, and the per-group rows.
  std::vector<int64_t> groups;
  for (int64_t g = 0; g < static_cast<int64_t>(prompts.size()); ++g) {
    if (options_.filter_zero_variance && flat[static_cast<size_t>(g)]) {
      ++m.filtered_groups;
    } else {
      groups.push_back(g);
    }
  }
  std::vector<std::vector<ScoredRow>> rows(prompts.size());
  for (size_t i = 0; i < N; ++i) {
    rows[i / static_cast<size_t>(G)].push_back(
        ScoredRow{requests[i / static_cast<size_t>(G)].prompt, completions[i].tokens});
  }
  // π_old (the rollout policy) and π_ref per kept group.
  std::vector<CompletionScores> old_scores(prompts.size()), ref_scores(prompts.size());
  for (const int64_t g : groups) {
    old_scores[static_cast<size_t>(g)] = score_rows(*policy_, rows[static_cast<size_t>(g)]);
    if (reference_)
      ref_scores[static_cast<size_t>(g)] = score_rows(*reference_, rows[static_cast<size_t>(g)]);
  }
  // Aggregation coefficients over the kept completions.
  std::vector<int64_t> counted;
  for (const int64_t g : groups) {
    for (int64_t j = 0; j < G; ++j) {
      const Completion& c = completions[static_cast<size_t>(g * G + j)];
      counted.push_back(
          options_.mask_truncated && c.truncated() ? 0 : static_cast<int64_t>(c.tokens.size()));
    }
  }
  const std::vector<double> coef =
      completion_coefficients(counted, options_.loss_type, options_.sampling.max_new_tokens);
  m.rollout_seconds = seconds_since(rollout_start);

  // --- μ updates ---
  const auto update_start = Clock::now();
  int64_t tokens_seen = 0, tokens_clipped = 0;
  double kl_sum = 0.0, entropy_sum = 0.0;
  for (int64_t update = 0; update < options_.updates_per_batch && !groups.empty(); ++update) {
    policy_->params().zero_grad();
    double objective = 0.0;
    for (size_t k = 0; k < groups.size(); ++k) {
      const size_t g = static_cast<size_t>(groups[k]);
      const RowBatch batch = make_row_batch(rows[g]);
      PolicyForward fwd;
      policy_forward(*policy_, batch.ids, batch.batch, batch.seq, fwd);
      const CompletionScores now = completion_scores(fwd.logits, batch, rows[g]);
      std::vector<std::vector<int32_t>> tokens;
      std::vector<std::vector<double>> dlogp(static_cast<size_t>(G));
      for (int64_t j = 0; j < G; ++j) {
        const size_t i = g * static_cast<size_t>(G) + static_cast<size_t>(j);
        const size_t slot = k * static_cast<size_t>(G) + static_cast<size_t>(j);
        tokens.push_back(completions[i].tokens);
        const bool masked = counted[slot] == 0;
        for (size_t t = 0; t < completions[i].tokens.size(); ++t) {
          const double logp = now.logp[static_cast<size_t>(j)][t];
          const double ref = reference_ ? ref_scores[g].logp[static_cast<size_t>(j)][t] : 0.0;
          const TokenObjective obj =
              token_objective(logp, old_scores[g].logp[static_cast<size_t>(j)][t], ref,
                              advantages[i], options_.objective);
          // loss = −J, so d loss / d logp = −c · d s / d logp.
          dlogp[static_cast<size_t>(j)].push_back(masked ? 0.0 : -coef[slot] * obj.dlogp);
          if (masked) continue;
          objective += coef[slot] * obj.value;
          ++tokens_seen;
          tokens_clipped += obj.clipped ? 1 : 0;
          kl_sum += obj.kl;
          entropy_sum += now.entropy[static_cast<size_t>(j)][t];
        }
      }
      const Tensor dlogits = completion_logit_grad(fwd.logits, batch, tokens, dlogp);
      policy_backward(*policy_, dlogits, fwd);
    }
    double sum_sq = 0.0;
    for (const models::Parameter& p : policy_->params().parameters()) {
      if (p.spec->trained && p.grad.defined()) sum_sq += sum_of_squares(p.grad);
    }
    if (update == 0) {
      m.loss = 0.0 - objective;  // no "-0" in the metrics
      m.grad_norm = std::sqrt(sum_sq);
    }
    const double clip = clip_coefficient(std::sqrt(sum_sq), options_.grad_clip);
    if (clip < 1.0) {
      Tensor grads = policy_->params().flat_grads();
      float* g = grads.data<float>();
      for (int64_t e = 0; e < grads.numel(); ++e) g[e] *= static_cast<float>(clip);
    }
    apply_optimizer();
  }
  if (tokens_seen > 0) {
    m.clip_fraction = static_cast<double>(tokens_clipped) / static_cast<double>(tokens_seen);
    m.kl = kl_sum / static_cast<double>(tokens_seen);
    m.entropy = entropy_sum / static_cast<double>(tokens_seen);
  }
  m.update_seconds = seconds_since(update_start);
  return m;
}

void GrpoTrainer::apply_optimizer() {
  ++optimizer_steps_;
  models::ParameterStore& store = policy_->params();
  float* values = store.flat_values().data<float>();
  float* grads = store.flat_grads().data<float>();
  float* m = exp_avg_.data<float>();
  float* v = exp_avg_sq_.data<float>();
  for (const models::Parameter& param : store.parameters()) {
    if (!param.spec->trained) continue;
    const int64_t offset = param.offset;
    adamw_update(values + offset, grads + offset, m + offset, v + offset, param.value.numel(),
                 options_.adam, options_.lr, optimizer_steps_, param.spec->weight_decay);
  }
}

}  // namespace trident::train::grpo
