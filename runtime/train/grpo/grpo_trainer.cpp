#include "runtime/train/grpo/grpo_trainer.h"

#include <chrono>
#include <algorithm>
#include <cmath>
#include <functional>

#include "parallel/dp/reduce_sum.h"
#include "runtime/io/tokenizer.h"
#include "runtime/train/grpo/pipeline_generate.h"
#include "runtime/train/grpo/policy.h"
#include "runtime/train/grpo/scoring.h"
#include "runtime/train/grpo/vocab_sharded.h"

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
  o.warmup_steps = g.warmup_steps();
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
    : GrpoTrainer(policy, std::move(options), nullptr) {}

GrpoTrainer::GrpoTrainer(models::DeepSeekV3Model& policy, GrpoOptions options,
                         parallel::Communicator* dp)
    : GrpoTrainer(policy, std::move(options), GrpoParallel{dp, nullptr, nullptr, {}}) {}

GrpoTrainer::GrpoTrainer(models::DeepSeekV3Model& policy, GrpoOptions options,
                         GrpoParallel parallel)
    : policy_(&policy),
      options_(std::move(options)),
      dp_(parallel.dp),
      parallel_(std::move(parallel)),
      lockstep_(parallel_.ep),
      stages_(policy, parallel_.pp) {
  if (lockstep_.active()) {
    TRIDENT_USER_CHECK(parallel_.setup.shards.ep_size == parallel_.ep->size(),
                       "the policy holds 1/", parallel_.setup.shards.ep_size,
                       " of the routed experts but the expert-parallel group has ",
                       parallel_.ep->size(), " ranks");
  }
  TRIDENT_USER_CHECK(options_.group_size >= 2, "grpo.group_size = ", options_.group_size,
                     " must be ≥ 2 (the group is the baseline)");
  const int64_t n = policy.params().numel();
  exp_avg_ = Tensor::zeros({n});
  exp_avg_sq_ = Tensor::zeros({n});
  if (options_.objective.beta != 0.0) {
    // The same layout as the policy (TP slices, its pipeline stage, held experts).
    models::ModelParallel layout = tensor_parallel_layout(policy);
    layout.pipeline = policy.holding();
    reference_ = std::make_unique<models::DeepSeekV3Model>(policy.config(), options_.seed, layout,
                                                           parallel_.setup);
    reference_stages_ = std::make_unique<StagedPolicy>(*reference_, parallel_.pp);
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

// This rank's contiguous block [begin, end) of `groups` groups split over `size` ranks.
struct GroupRange {
  int64_t begin = 0;
  int64_t end = 0;
};
GroupRange rank_groups(int64_t groups, int rank, int size) {
  const int64_t base = groups / size, extra = groups % size;
  const int64_t begin = rank * base + std::min<int64_t>(rank, extra);
  return GroupRange{begin, begin + base + (rank < extra ? 1 : 0)};
}

// What the whole batch needs to know about each completion, one double per field, so a sum over
// ranks (each filling only its own completions) gives every rank the global arrays.
enum Field : size_t { kReward, kCorrect, kFormat, kLength, kTruncated, kFields };
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
  const int dp_rank = dp_ ? dp_->rank() : 0, dp_size = dp_ ? dp_->size() : 1;
  const GroupRange mine = rank_groups(static_cast<int64_t>(prompts.size()), dp_rank, dp_size);
  const auto is_mine = [&mine](int64_t g) { return g >= mine.begin && g < mine.end; };

  // --- rollout of this rank's groups ---
  std::vector<GenerationRequest> requests;
  for (const GrpoPrompt& p : prompts) {
    requests.push_back(GenerationRequest{p.id, io::ByteTokenizer::encode(p.text), G});
  }
  const std::vector<GenerationRequest> my_requests(requests.begin() + mine.begin,
                                                   requests.begin() + mine.end);
  const std::vector<Completion> my_completions =
      generate_staged(stages_, my_requests, options_.sampling, &lockstep_);
  const size_t N = prompts.size() * static_cast<size_t>(G);
  const size_t offset = static_cast<size_t>(mine.begin * G);
  std::vector<Completion> completions(N);  // only this rank's slots are filled
  for (size_t i = 0; i < my_completions.size(); ++i) completions[offset + i] = my_completions[i];

  std::vector<RewardInput> inputs;
  std::vector<double> fields(N * kFields, 0.0);
  for (size_t k = 0; k < my_completions.size(); ++k) {
    const size_t i = offset + k;
    const GrpoPrompt& p = prompts[i / static_cast<size_t>(G)];
    inputs.push_back(RewardInput{p.text, completions[i].text, p.reference});
    const RuleReward rule = rule_reward(inputs.back(), options_.reward_weights);
    double* f = &fields[i * kFields];
    f[kReward] = rule.reward;
    f[kCorrect] = rule.correct ? 1.0 : 0.0;
    f[kFormat] = rule.format ? 1.0 : 0.0;
    f[kLength] = static_cast<double>(completions[i].tokens.size());
    f[kTruncated] = completions[i].truncated() ? 1.0 : 0.0;
  }
  if (!options_.reward_command.empty() && !inputs.empty()) {
    const std::vector<double> external =
        external_rewards(options_.reward_command, inputs, options_.reward_timeout_s);
    for (size_t k = 0; k < external.size(); ++k) fields[(offset + k) * kFields] = external[k];
  }
  fields = parallel::dp::sum_over_ranks(dp_, fields);

  std::vector<double> rewards(N);
  for (size_t i = 0; i < N; ++i) {
    const double* f = &fields[i * kFields];
    rewards[i] = f[kReward];
    m.accuracy += f[kCorrect];
    m.format_rate += f[kFormat];
    m.completion_length += f[kLength];
    m.truncated_fraction += f[kTruncated];
  }
  const double count = static_cast<double>(N);
  m.accuracy /= count, m.format_rate /= count, m.completion_length /= count;
  m.truncated_fraction /= count;
  for (const double r : rewards) m.reward += r / count;
  for (const double r : rewards) m.reward_std += (r - m.reward) * (r - m.reward) / count;
  m.reward_std = std::sqrt(m.reward_std);

  const std::vector<double> advantages = group_advantages(rewards, G, options_.advantages);
  const std::vector<bool> flat = zero_variance_groups(rewards, G);

  // Groups that take part in the update (all ranks agree on them), and the rows of ours.
  std::vector<int64_t> groups;
  for (int64_t g = 0; g < static_cast<int64_t>(prompts.size()); ++g) {
    if (options_.filter_zero_variance && flat[static_cast<size_t>(g)]) {
      ++m.filtered_groups;
    } else {
      groups.push_back(g);
    }
  }
  std::vector<std::vector<ScoredRow>> rows(prompts.size());
  for (int64_t g = mine.begin; g < mine.end; ++g) {
    for (int64_t j = 0; j < G; ++j) {
      rows[static_cast<size_t>(g)].push_back(ScoredRow{
          requests[static_cast<size_t>(g)].prompt, completions[static_cast<size_t>(g * G + j)].tokens});
    }
  }
  // π_old (the rollout policy) and π_ref per kept group of this rank, one model per pass (under
  // expert parallelism the ranks' forwards pair up, so all must run the same model).
  std::vector<CompletionScores> old_scores(prompts.size()), ref_scores(prompts.size());
  // Under pipeline parallelism the scores exist on the last stage only (the only one that uses
  // them).
  const auto score_pass = [&](StagedPolicy& model, std::vector<CompletionScores>& scores) {
    for (const int64_t g : groups) {
      if (!is_mine(g)) continue;
      lockstep_.before_forward();
      scores[static_cast<size_t>(g)] = model.score(rows[static_cast<size_t>(g)]);
    }
    lockstep_.finish([&model] { model.filler_forward(); });
  };
  score_pass(stages_, old_scores);
  if (reference_) score_pass(*reference_stages_, ref_scores);
  // Aggregation coefficients over all kept completions of the batch.
  std::vector<int64_t> counted;
  for (const int64_t g : groups) {
    for (int64_t j = 0; j < G; ++j) {
      const double* f = &fields[static_cast<size_t>(g * G + j) * kFields];
      counted.push_back(options_.mask_truncated && f[kTruncated] != 0.0
                            ? 0
                            : static_cast<int64_t>(f[kLength]));
    }
  }
  const std::vector<double> coef =
      completion_coefficients(counted, options_.loss_type, options_.sampling.max_new_tokens);
  m.rollout_seconds = seconds_since(rollout_start);

  // --- μ updates ---
  const auto update_start = Clock::now();
  double tokens_seen = 0, tokens_clipped = 0, kl_sum = 0.0, entropy_sum = 0.0;
  for (int64_t update = 0; update < options_.updates_per_batch && !groups.empty(); ++update) {
    policy_->params().zero_grad();
    double objective = 0.0;
    for (size_t k = 0; k < groups.size(); ++k) {
      if (!is_mine(groups[k])) continue;
      const size_t g = static_cast<size_t>(groups[k]);
      const RowBatch batch = make_row_batch(rows[g]);
      lockstep_.before_forward();
      PolicyForward fwd;
      stages_.forward(batch.ids, batch.batch, batch.seq, fwd);
      if (!stages_.last_stage()) {  // pipeline: the loss and its gradient live on the last stage
        stages_.backward(Tensor(), fwd);
        continue;
      }
      const CompletionScores now = model_completion_scores(*policy_, fwd.logits, batch, rows[g]);
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
          tokens_seen += 1.0;
          tokens_clipped += obj.clipped ? 1.0 : 0.0;
          kl_sum += obj.kl;
          entropy_sum += now.entropy[static_cast<size_t>(j)][t];
        }
      }
      const Tensor dlogits =
          model_completion_logit_grad(*policy_, fwd.logits, batch, tokens, dlogp);
      stages_.backward(dlogits, fwd);
    }
    lockstep_.finish([this] { stages_.filler_forward_backward(); });
    const double sum_sq = reduce_gradients();
    if (update == 0) {
      objective = stages_.sum_over_stages({objective})[0];  // known on the last stage
      m.loss = 0.0 - parallel::dp::sum_over_ranks(dp_, objective);  // no "-0" in the metrics
      m.grad_norm = std::sqrt(sum_sq);
    }
    const double clip = clip_coefficient(std::sqrt(sum_sq), options_.grad_clip);
    if (clip < 1.0) {
      Tensor grads = policy_->params().flat_grads();
      float* g = grads.data<float>();
      for (int64_t e = 0; e < grads.numel(); ++e) g[e] *= static_cast<float>(clip);
    }
    apply_optimizer(step_lr(step));
  }
  const std::vector<double> token_sums = parallel::dp::sum_over_ranks(
      dp_, stages_.sum_over_stages({tokens_seen, tokens_clipped, kl_sum, entropy_sum}));
  if (token_sums[0] > 0) {
    m.clip_fraction = token_sums[1] / token_sums[0];
    m.kl = token_sums[2] / token_sums[0];
    m.entropy = token_sums[3] / token_sums[0];
  }
  m.update_seconds = seconds_since(update_start);
  return m;
}

namespace {
// The trained parameters with a gradient for which `pick` holds.
std::vector<const models::Parameter*> trained_where(
    const models::ParameterStore& store,
    const std::function<bool(const models::Parameter&)>& pick) {
  std::vector<const models::Parameter*> out;
  for (const models::Parameter& p : store.parameters()) {
    if (p.spec->trained && p.grad.defined() && pick(p)) out.push_back(&p);
  }
  return out;
}

// Sums the gradients of `params` over `group` (null or one rank: nothing to do).
void sum_gradients(parallel::Communicator* group,
                   const std::vector<const models::Parameter*>& params) {
  if (group == nullptr || group->size() <= 1 || params.empty()) return;
  int64_t total = 0;
  for (const models::Parameter* p : params) total += p->grad.numel();
  Tensor packed = Tensor::empty({total});
  float* dst = packed.data<float>();
  for (const models::Parameter* p : params) {
    dst = std::copy_n(p->grad.data<float>(), p->grad.numel(), dst);
  }
  group->all_reduce(packed, parallel::ReduceOp::Sum)->wait();
  const float* src = packed.data<float>();
  for (const models::Parameter* p : params) {
    std::copy_n(src, p->grad.numel(), p->grad.data<float>());
    src += p->grad.numel();
  }
}

double squares_of(const std::vector<const models::Parameter*>& params) {
  double sum = 0.0;
  for (const models::Parameter* p : params) sum += sum_of_squares(p->grad);
  return sum;
}
}  // namespace

double GrpoTrainer::reduce_gradients() {
  // Each pipeline stage holds different parameters: their squares add up over the stages.
  return stages_.sum_over_stages({reduce_stage_gradients()})[0];
}

double GrpoTrainer::reduce_stage_gradients() {
  models::ParameterStore& store = policy_->params();
  if (!expert_parallel()) {
    if (dp_ != nullptr && dp_->size() > 1) {
      dp_->all_reduce(store.flat_grads(), parallel::ReduceOp::Sum)->wait();
    }
    // Under TP the dp group joins ranks of the same TP rank; split slices count over TP.
    return tensor_parallel_squares(
        *policy_, trained_where(store, [](const models::Parameter&) { return true; }));
  }
  // Each EP rank's held experts already carry the gradient of every token of the EP group
  // routed to them; the ranks holding the same experts (edp) add theirs. Everything else is
  // replicated over dp.
  const auto is_expert = [](const models::Parameter& p) {
    return p.spec->placement.expert_parallel;
  };
  const std::vector<const models::Parameter*> experts = trained_where(store, is_expert);
  const std::vector<const models::Parameter*> dense =
      trained_where(store, [&](const models::Parameter& p) { return !is_expert(p); });
  sum_gradients(dp_, dense);
  sum_gradients(parallel_.edp, experts);
  // Dense squares are alike on every rank; each expert lives on one EP rank (per edp replica).
  return tensor_parallel_squares(*policy_, dense) +
         parallel::dp::sum_over_ranks(parallel_.ep, squares_of(experts));
}

double GrpoTrainer::step_lr(int64_t step) const {
  // Adam's first updates move every weight by about lr whatever the gradient's size; a ramp
  // keeps those first moves small while the moment estimates settle.
  if (options_.warmup_steps <= 0 || step > options_.warmup_steps) return options_.lr;
  return options_.lr * static_cast<double>(step) / static_cast<double>(options_.warmup_steps);
}

void GrpoTrainer::apply_optimizer(double lr) {
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
                 options_.adam, lr, optimizer_steps_, param.spec->weight_decay);
  }
}

}  // namespace trident::train::grpo
