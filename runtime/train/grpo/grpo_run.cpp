#include "runtime/train/grpo/grpo_run.h"

#include <algorithm>
#include <cstdio>
#include <memory>

#include "runtime/config/config.h"
#include "runtime/core/logging.h"
#include "runtime/io/checkpoint_claim.h"
#include "runtime/io/collective_watchdog.h"
#include "runtime/io/hf_weights.h"
#include "runtime/io/jsonl.h"
#include "runtime/io/on_root.h"
#include "runtime/train/grpo/evaluate.h"
#include "runtime/train/grpo/grpo_checkpoint.h"
#include "runtime/train/grpo/sharded_export.h"
#include "runtime/train/progress.h"
#include "runtime/train/stop_signal.h"

namespace trident::train::grpo {

nlohmann::json grpo_metrics_record(const GrpoStepMetrics& m) {
  return nlohmann::json{{"step", m.step},
                        {"reward", m.reward},
                        {"reward_std", m.reward_std},
                        {"accuracy", m.accuracy},
                        {"format_rate", m.format_rate},
                        {"kl", m.kl},
                        {"clip_fraction", m.clip_fraction},
                        {"completion_length", m.completion_length},
                        {"truncated_fraction", m.truncated_fraction},
                        {"entropy", m.entropy},
                        {"loss", m.loss},
                        {"grad_norm", m.grad_norm},
                        {"filtered_groups", m.filtered_groups},
                        {"skipped", m.skipped},
                        {"skipped_steps", m.skipped_steps},
                        {"rollout_s", m.rollout_seconds},
                        {"update_s", m.update_seconds}};
}

namespace {
std::string progress_line(const GrpoStepMetrics& m, int64_t steps, const ProgressMeter& meter) {
  char line[320];
  std::snprintf(
      line, sizeof line,
      "grpo step %lld/%lld | reward %.3f acc %.3f fmt %.3f | kl %.4f clip %.3f | len %.1f "
      "ent %.3f | rollout %.2fs update %.2fs | eta %s",
      static_cast<long long>(m.step), static_cast<long long>(steps), m.reward, m.accuracy,
      m.format_rate, m.kl, m.clip_fraction, m.completion_length, m.entropy, m.rollout_seconds,
      m.update_seconds, ProgressMeter::format_duration(meter.eta_seconds(m.step)).c_str());
  return line;
}
}  // namespace

GrpoRunSummary run_grpo(const config::TridentConfig& config,
                        const parallel::ParallelContext& context, const GrpoRunOptions& options) {
  using parallel::MeshAxis;
  config::ModelConfig model_config = config.model();
  const std::string& init = options.init_hf_dir;
  const bool from_checkpoint = !init.empty() && is_trident_checkpoint(init);
  if (!init.empty()) {
    model_config = from_checkpoint ? checkpoint_model_config(init)
                                   : config::import_hf_config(init + "/config.json");
  }
  // Each rank holds part of the weights: checkpoints and the HF export go through the collective
  // writer over the job, loads take each rank's slices.
  const bool sharded = context.size(MeshAxis::Tp) > 1 || context.size(MeshAxis::Ep) > 1 ||
                       context.size(MeshAxis::Pp) > 1;
  const MPI_Comm job = context.job();
  const bool primary = context.primary();
  const std::unique_ptr<models::DeepSeekV3Model> policy =
      build_policy(model_config, config.parallel(), config.train().seed(), context);
  if (from_checkpoint) {
    load_policy_weights(init, *policy, job);
    TLOG_INFO("policy initialised from checkpoint ", init);
  } else if (!init.empty()) {
    io::load_hf_weights(policy->params(), init);  // each rank reads its slices
    TLOG_INFO("policy initialised from HF weights in ", init);
  }
  GrpoTrainer trainer(*policy, grpo_options(config), context, config.parallel());
  if (context.size(MeshAxis::Pp) > 1) {
    TLOG_INFO("pipeline parallel: ", context.size(MeshAxis::Pp), " rank(s), schedule '",
              config.parallel().schedule().empty() ? "1f1b" : config.parallel().schedule(), "'");
  }
  const StopSignalScope stop_signals;
  const io::CheckpointClaim claim = io::claim_checkpoint_dir(config.checkpoint().dir(), "", job);
  io::CollectiveWatchdog watchdog(job, config.parallel().comm_timeout_s());
  // A sharded policy is written collectively (each rank its slices, replicas once); whole
  // replicas by rank 0 of the job alone, whose failure every rank then shares.
  const auto save_checkpoint = [&](int64_t step) {
    if (sharded) {
      save_policy_checkpoint(config, *policy, step, job, claim.run_id, &watchdog);
    } else {
      io::on_root(job, [&] {
        save_policy_checkpoint(config, *policy, step, MPI_COMM_SELF, claim.run_id);
      });
    }
  };
  const GrpoOptions& o = trainer.options();
  std::unique_ptr<io::JsonlWriter> jsonl;
  if (primary && !config.logging().metrics_path().empty()) {
    jsonl = std::make_unique<io::JsonlWriter>(config.logging().metrics_path(), /*append=*/false);
  }
  // Evaluation decodes the same problems on every rank; under EP their forwards pair up.
  const auto evaluate = [&] {
    return evaluate_arithmetic(trainer.decoder(), o.seed, config.grpo().eval_prompts(), o.task,
                               o.sampling, &trainer.lockstep());
  };
  GrpoRunSummary summary;
  const int64_t eval_prompts = config.grpo().eval_prompts();
  if (eval_prompts > 0) {
    const EvalResult e = evaluate();
    summary.eval_accuracy_before = e.accuracy;
    TLOG_INFO("held-out greedy accuracy before GRPO: ", e.accuracy, ", format rate ",
              e.format_rate);
  }
  const int64_t steps = config.grpo().steps();
  ProgressMeter meter(steps);
  for (int64_t step = 1; step <= steps; ++step) {
    const GrpoStepMetrics m = trainer.step(step);
    meter.tick();
    summary.steps.push_back(m);
    if (jsonl) jsonl->write(grpo_metrics_record(m));
    TLOG_INFO(progress_line(m, steps, meter));
    const int64_t every = config.checkpoint().every();
    const bool saved = every > 0 && step % every == 0 && step != steps;
    if (saved) save_checkpoint(step);
    // Every rank stops after the same step.
    summary.stop_signal = agree_on_stop(context);
    if (summary.stop_signal != 0) {
      TLOG_WARN(stop_signal_name(summary.stop_signal), " received: saving the policy after GRPO ",
                "step ", step, " and stopping");
      if (!saved) save_checkpoint(step);
      return summary;
    }
  }
  if (steps > 0) save_checkpoint(steps);
  if (eval_prompts > 0) {
    const EvalResult e = evaluate();
    summary.eval_accuracy_after = e.accuracy;
    TLOG_INFO("held-out greedy accuracy after GRPO: ", e.accuracy, ", format rate ", e.format_rate);
    if (jsonl) {
      jsonl->write(nlohmann::json{{"eval_accuracy_before", summary.eval_accuracy_before},
                                  {"eval_accuracy", e.accuracy},
                                  {"eval_format_rate", e.format_rate},
                                  {"eval_prompts", eval_prompts}});
    }
  }
  if (!options.save_hf_dir.empty()) {
    save_policy_hf(config, *policy, options.save_hf_dir, sharded, primary, job);
    TLOG_INFO("saved HF weights to ", options.save_hf_dir);
  }
  return summary;
}

}  // namespace trident::train::grpo
