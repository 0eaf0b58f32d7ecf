#include "runtime/train/grpo/grpo_trainer.h"

#include <algorithm>
#include <chrono>
#include <cmath>

#include "models/deepseek_v3/parallelize/parallelize.h"
#include "parallel/comm/sum_in_rank_order.h"
#include "runtime/config/config.h"
#include "runtime/core/error.h"
#include "runtime/io/tokenizer.h"
#include "runtime/train/grpo/scoring.h"
#include "runtime/train/precision.h"

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
  o.adam = ops::AdamWSettings{t.beta1(), t.beta2(), t.adam_eps(), t.weight_decay()};
  o.moments = moment_dtype(t);
  o.grad_clip = t.grad_clip();
  o.nonfinite = nonfinite_settings(t, "grpo.lr");
  o.task.digits =
      static_cast<int>(config.data().task_digits() > 0 ? config.data().task_digits() : 3);
  o.seed = t.seed();
  return o;
}

GroupRange rank_groups(int64_t groups, int rank, int size) {
  const int64_t base = groups / size, extra = groups % size;
  const int64_t begin = rank * base + std::min<int64_t>(rank, extra);
  return GroupRange{begin, begin + base + (rank < extra ? 1 : 0)};
}

std::vector<GrpoPrompt> arithmetic_prompts(uint64_t seed, io::Split split, uint64_t first,
                                           int64_t count, const io::ArithmeticOptions& task) {
  std::vector<GrpoPrompt> out;
  for (int64_t i = 0; i < count; ++i) {
    const uint64_t index = first + static_cast<uint64_t>(i);
    const io::ArithmeticProblem p = io::make_problem(seed, split, index, task);
    out.push_back(GrpoPrompt{index, p.prompt, p.answer, p.carries});
  }
  return out;
}

namespace {
using Clock = std::chrono::steady_clock;

double mean_of(const std::vector<double>& values) {
  double sum = 0.0;
  for (const double v : values) sum += v / static_cast<double>(values.size());
  return sum;
}
// The population standard deviation about `mean`.
double std_of(const std::vector<double>& values, double mean) {
  double sum = 0.0;
  for (const double v : values) sum += (v - mean) * (v - mean) / static_cast<double>(values.size());
  return std::sqrt(sum);
}
double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

// What the whole batch needs to know about each completion, one double per field, so a sum over
// ranks (each filling only its own completions) gives every rank the global arrays.
enum Field : size_t { kReward, kCorrect, kFormat, kLength, kTruncated, kFields };

OptimizerSettings policy_optimizer_settings(const GrpoOptions& options,
                                            const config::ParallelConfig& parallel) {
  OptimizerSettings settings;
  settings.adam = options.adam;
  settings.moments = options.moments;
  settings.zero1 = parallel.zero1();
  settings.bucket_mb = parallel.dp_bucket_mb();
  // The policy runs no MTP: the last stage holds no copy of the embedding.
  settings.embedding_copy = false;
  return settings;
}

// The temperature the objectives score at: the sampler's. Greedy rollouts (T = 0; only tests
// build them, the config requires T > 0) are scored with the plain head.
double scoring_temperature(const GrpoOptions& options) {
  return options.sampling.temperature > 0.0 ? options.sampling.temperature : 1.0;
}

models::PipelineHolding policy_holding(const models::parallelize::PipelinePartition& partition,
                                       const parallel::ParallelContext& context) {
  return models::parallelize::holding_of_rank(partition, context.rank(parallel::MeshAxis::Pp),
                                              /*mtp_depth=*/0);
}
}  // namespace

std::unique_ptr<models::DeepSeekV3Model> build_policy(
    const config::ModelConfig& model, const config::ParallelConfig& parallel, uint64_t seed,
    const parallel::ParallelContext& context, const models::Precision& precision, Device device) {
  return models::parallelize::build_model(
      model, parallel, seed, context,
      policy_holding(models::parallelize::pipeline_partition(model, parallel), context), precision,
      device);
}

GrpoTrainer::GrpoTrainer(models::DeepSeekV3Model& policy, GrpoOptions options)
    : GrpoTrainer(policy, std::move(options), parallel::ParallelContext::one_rank(),
                  config::default_config().parallel()) {}

GrpoTrainer::GrpoTrainer(models::DeepSeekV3Model& policy, GrpoOptions options,
                         const parallel::ParallelContext& context,
                         const config::ParallelConfig& parallel)
    : policy_(policy),
      options_(std::move(options)),
      context_(context),
      parallel_(parallel),
      partition_(models::parallelize::pipeline_partition(policy.config(), parallel)),
      engine_(parallel, context, partition_),
      optimizer_(policy, context, partition_, policy_optimizer_settings(options_, parallel)),
      lr_{options_.lr, options_.lr, options_.warmup_steps, options_.warmup_steps + 1},
      compute_(policy, partition_, context.rank(parallel::MeshAxis::Pp)),
      scoring_(policy, scoring_temperature(options_)),
      objective_(policy, options_.objective, scoring_temperature(options_)),
      decoder_(policy, partition_, context),
      lockstep_(context.ep()),
      nonfinite_(policy.params(), context, options_.nonfinite) {
  TRIDENT_USER_CHECK(options_.group_size >= 2, "grpo.group_size = ", options_.group_size,
                     " must be ≥ 2 (the group is the baseline)");
  const models::PipelineHolding expected = policy_holding(partition_, context);
  for (int64_t l = 0; l < policy.num_layers(); ++l) {
    TRIDENT_CHECK(policy.holding().holds_layer(l) == expected.holds_layer(l),
                  "the policy was not built for this rank's pipeline stages (build_policy)");
  }
  if (options_.objective.beta != 0.0) {
    // The same layout as the policy (TP slices, held experts, pipeline stages).
    reference_ = build_policy(policy.config(), parallel, options_.seed, context,
                              policy.params().precision(), policy.params().device());
    reference_compute_ = std::make_unique<ModelStageCompute>(*reference_, partition_,
                                                             context.rank(parallel::MeshAxis::Pp));
    reference_scoring_ = std::make_unique<ScoringObjective>(*reference_,
                                                            scoring_temperature(options_));
    refresh_reference();
  }
}

void GrpoTrainer::restore(const ResumeState& state) {
  optimizer_steps_ = state.optimizer_steps;
  nonfinite_.restore_skipped(state.skipped_steps);
  optimizer_.reload_master_weights();
}

void GrpoTrainer::refresh_reference() {
  Tensor values = reference_->params().flat_values();
  values.copy_from(policy_.params().flat_values());
  reference_->params().refresh_compute_weights();
}

GrpoStepMetrics GrpoTrainer::step(int64_t step) {
  const uint64_t first =
      static_cast<uint64_t>(step - 1) * static_cast<uint64_t>(options_.prompts_per_step);
  return this->step(step, arithmetic_prompts(options_.seed, io::Split::Train, first,
                                             options_.prompts_per_step, options_.task));
}

int GrpoTrainer::pass_size(const std::vector<int64_t>& counts) const {
  const int64_t most = *std::max_element(counts.begin(), counts.end());
  return engine_.microbatches_for(static_cast<int>(most));
}

std::vector<CompletionScores> GrpoTrainer::score(ModelStageCompute& compute,
                                                 ScoringObjective& scoring,
                                                 const std::vector<GroupBatch>& pass) {
  scoring.begin_pass(pass);
  const std::vector<StageInput> inputs = stage_inputs(pass);
  compute.begin_step(inputs, scoring, 0.0f);
  engine_.forward(compute, static_cast<int>(pass.size()));
  return scoring.scores();
}

GrpoTrainer::Rollouts GrpoTrainer::roll_out(const std::vector<GrpoPrompt>& prompts,
                                             GrpoStepMetrics& m) {
  const int64_t G = options_.group_size;
  const int dp_size = context_.size(parallel::MeshAxis::Dp);
  const GroupRange mine =
      rank_groups(static_cast<int64_t>(prompts.size()), context_.rank(parallel::MeshAxis::Dp),
                  dp_size);
  Rollouts out;
  out.mine_begin = mine.begin;
  out.mine_end = mine.end;
  for (const GrpoPrompt& p : prompts) {
    out.requests.push_back(GenerationRequest{p.id, io::ByteTokenizer::encode(p.text), G});
  }
  const std::vector<GenerationRequest> my_requests(out.requests.begin() + mine.begin,
                                                   out.requests.begin() + mine.end);
  const std::vector<Completion> my_completions =
      generate(decoder_, my_requests, options_.sampling, &lockstep_);
  const size_t N = prompts.size() * static_cast<size_t>(G);
  const size_t offset = static_cast<size_t>(mine.begin * G);
  out.completions.resize(N);  // only this rank's slots are filled
  for (size_t i = 0; i < my_completions.size(); ++i) {
    out.completions[offset + i] = my_completions[i];
  }

  std::vector<RewardInput> inputs;
  out.fields.assign(N * kFields, 0.0);
  for (size_t k = 0; k < my_completions.size(); ++k) {
    const size_t i = offset + k;
    const GrpoPrompt& p = prompts[i / static_cast<size_t>(G)];
    inputs.push_back(RewardInput{p.text, out.completions[i].text, p.reference});
    const RuleReward rule = rule_reward(inputs.back(), options_.reward_weights);
    double* f = &out.fields[i * kFields];
    f[kReward] = rule.reward;
    f[kCorrect] = rule.correct ? 1.0 : 0.0;
    f[kFormat] = rule.format ? 1.0 : 0.0;
    f[kLength] = static_cast<double>(out.completions[i].tokens.size());
    f[kTruncated] = out.completions[i].truncated() ? 1.0 : 0.0;
  }
  if (!options_.reward_command.empty() && !inputs.empty()) {
    const std::vector<double> external =
        external_rewards(options_.reward_command, inputs, options_.reward_timeout_s);
    for (size_t k = 0; k < external.size(); ++k) out.fields[(offset + k) * kFields] = external[k];
  }
  out.fields = parallel::comm::sum_in_rank_order(context_.dp(), out.fields);

  std::array<double, kCarryBuckets> correct_by_carries{}, count_by_carries{};
  for (size_t i = 0; i < N; ++i) {
    const double* f = &out.fields[i * kFields];
    out.rewards.push_back(f[kReward]);
    m.accuracy += f[kCorrect];
    m.format_rate += f[kFormat];
    m.completion_length += f[kLength];
    m.completion_length_max = std::max(m.completion_length_max, f[kLength]);
    m.truncated_fraction += f[kTruncated];
    const int bucket = carry_bucket(prompts[i / static_cast<size_t>(G)].carries);
    correct_by_carries[bucket] += f[kCorrect];
    count_by_carries[bucket] += 1.0;
  }
  const double count = static_cast<double>(N);
  m.accuracy /= count, m.format_rate /= count, m.completion_length /= count;
  m.truncated_fraction /= count;
  for (int b = 0; b < kCarryBuckets; ++b) {
    if (count_by_carries[b] > 0)
      m.accuracy_by_carries[b] = correct_by_carries[b] / count_by_carries[b];
  }
  m.reward = mean_of(out.rewards);
  m.reward_std = std_of(out.rewards, m.reward);
  for (size_t g = 0; g < prompts.size(); ++g) {
    const std::vector<double> group(out.rewards.begin() + static_cast<std::ptrdiff_t>(g * G),
                                    out.rewards.begin() + static_cast<std::ptrdiff_t>((g + 1) * G));
    m.group_reward_std += std_of(group, mean_of(group)) / static_cast<double>(prompts.size());
  }
  const std::vector<bool> flat = zero_variance_groups(out.rewards, G);
  m.zero_variance_groups = static_cast<double>(std::count(flat.begin(), flat.end(), true)) /
                           static_cast<double>(flat.size());
  return out;
}

std::vector<GroupBatch> GrpoTrainer::update_pass(const Rollouts& rollouts, GrpoStepMetrics& m) {
  const int64_t G = options_.group_size;
  const int64_t P = static_cast<int64_t>(rollouts.requests.size());
  const int dp_size = context_.size(parallel::MeshAxis::Dp);
  const std::vector<double> advantages =
      group_advantages(rollouts.rewards, G, options_.advantages);
  const std::vector<bool> flat = zero_variance_groups(rollouts.rewards, G);

  // Groups that take part in the update (all ranks agree on them), how many each rank has, and
  // the aggregation coefficients over all kept completions of the batch.
  std::vector<int64_t> kept;
  std::vector<int64_t> kept_per_rank(static_cast<size_t>(dp_size), 0);
  std::vector<int64_t> counted;
  for (int64_t g = 0; g < P; ++g) {
    if (options_.filter_zero_variance && flat[static_cast<size_t>(g)]) {
      ++m.filtered_groups;
      continue;
    }
    kept.push_back(g);
    for (int r = 0; r < dp_size; ++r) {
      if (rank_groups(P, r, dp_size).contains(g)) ++kept_per_rank[static_cast<size_t>(r)];
    }
    for (int64_t j = 0; j < G; ++j) {
      const double* f = &rollouts.fields[static_cast<size_t>(g * G + j) * kFields];
      counted.push_back(options_.mask_truncated && f[kTruncated] != 0.0
                            ? 0
                            : static_cast<int64_t>(f[kLength]));
    }
  }
  if (kept.empty()) return {};
  const std::vector<double> coef =
      completion_coefficients(counted, options_.loss_type, options_.sampling.max_new_tokens);

  // One micro-batch per kept group of this rank's block, then fillers up to the pass size.
  std::vector<GroupBatch> pass;
  for (size_t k = 0; k < kept.size(); ++k) {
    const int64_t g = kept[k];
    if (g < rollouts.mine_begin || g >= rollouts.mine_end) continue;
    GroupBatch group;
    for (int64_t j = 0; j < G; ++j) {
      const size_t i = static_cast<size_t>(g * G + j);
      const size_t slot = k * static_cast<size_t>(G) + static_cast<size_t>(j);
      group.source.push_back(ScoredRow{rollouts.requests[static_cast<size_t>(g)].prompt,
                                       rollouts.completions[i].tokens});
      group.advantages.push_back(advantages[i]);
      group.coefficients.push_back(counted[slot] == 0 ? 0.0 : coef[slot]);
    }
    group.rows = make_row_batch(group.source);
    pass.push_back(std::move(group));
  }
  const int M = pass_size(kept_per_rank);
  while (static_cast<int>(pass.size()) < M) pass.push_back(filler_group());
  return pass;
}

void GrpoTrainer::update(int64_t step, std::vector<GroupBatch>& pass, GrpoStepMetrics& m) {
  // π_old (the rollout policy) and π_ref of every group of the pass (on the last stage).
  const std::vector<CompletionScores> old_scores = score(compute_, scoring_, pass);
  const std::vector<CompletionScores> ref_scores =
      reference_ ? score(*reference_compute_, *reference_scoring_, pass)
                 : std::vector<CompletionScores>{};
  for (size_t k = 0; k < pass.size(); ++k) {
    pass[k].old_scores = &old_scores[k];
    pass[k].ref_scores = reference_ ? &ref_scores[k] : nullptr;
  }
  PolicyPassSums totals;
  const int M = static_cast<int>(pass.size());
  const std::vector<StageInput> inputs = stage_inputs(pass);
  for (int64_t update = 0; update < options_.updates_per_batch; ++update) {
    optimizer_.begin_step();
    objective_.begin_pass(pass);
    compute_.begin_step(inputs, objective_, 0.0f);
    engine_.train(compute_, M, [this](int block) { optimizer_.block_final(block); });
    optimizer_.finish_gradients();
    const double norm = optimizer_.grad_norm();
    const PolicyPassSums& sums = objective_.sums();
    // Known on the last stage: summed over the pipeline, then over dp.
    const double loss =
        0.0 - parallel::comm::sum_in_rank_order(
                  context_.dp(), parallel::comm::sum_in_rank_order(context_.pp(), sums.objective));
    if (update == 0) {
      m.loss = loss;  // 0.0 - J: no "-0" in the metrics
      m.grad_norm = norm;
    }
    totals.tokens += sums.tokens;
    totals.clipped += sums.clipped;
    totals.kl += sums.kl;
    totals.entropy += sums.entropy;
    const std::string what =
        "GRPO step " + std::to_string(step) + ", update " + std::to_string(update + 1);
    if (!nonfinite_.admit(what, loss, norm)) {
      m.skipped = true;  // the rest of the step's updates would start from the same weights
      break;
    }
    const double lr = lr_.at(step);
    const int64_t nonfinite =
        optimizer_.update(lr, clip_coefficient(norm, options_.grad_clip), ++optimizer_steps_);
    nonfinite_.check_update(what, options_.lr, nonfinite);
  }
  m.skipped_steps = nonfinite_.skipped();
  const std::vector<double> token_sums = parallel::comm::sum_in_rank_order(
      context_.dp(),
      parallel::comm::sum_in_rank_order(
          context_.pp(), {totals.tokens, totals.clipped, totals.kl, totals.entropy}));
  if (token_sums[0] > 0) {
    m.clip_fraction = token_sums[1] / token_sums[0];
    m.kl = token_sums[2] / token_sums[0];
    m.entropy = token_sums[3] / token_sums[0];
  }
}

GrpoStepMetrics GrpoTrainer::step(int64_t step, const std::vector<GrpoPrompt>& prompts) {
  GrpoStepMetrics m;
  m.step = step;
  const auto rollout_start = Clock::now();
  if (reference_ && options_.ref_refresh_every > 0 && step > 1 &&
      (step - 1) % options_.ref_refresh_every == 0) {
    refresh_reference();
  }
  const Rollouts rollouts = roll_out(prompts, m);
  std::vector<GroupBatch> pass = update_pass(rollouts, m);
  m.rollout_seconds = seconds_since(rollout_start);
  const auto update_start = Clock::now();
  // With no group left anywhere (all filtered) the step only rolled out.
  if (!pass.empty()) update(step, pass, m);
  m.update_seconds = seconds_since(update_start);
  return m;
}

}  // namespace trident::train::grpo
