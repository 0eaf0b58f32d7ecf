#include "runtime/train/grpo/grpo_run.h"

#include <algorithm>
#include <cstdio>
#include <memory>

#include "runtime/config/config.h"
#include "runtime/core/logging.h"
#include "runtime/io/checkpoint_claim.h"
#include "runtime/io/collective_watchdog.h"
#include "runtime/io/jsonl.h"
#include "runtime/io/tensorboard.h"
#include "runtime/train/grpo/evaluate.h"
#include "runtime/train/grpo/grpo_checkpoint.h"
#include "runtime/train/grpo/sharded_export.h"
#include "runtime/train/placement.h"
#include "runtime/train/precision.h"
#include "runtime/train/progress.h"
#include "runtime/train/stop_signal.h"
#include "runtime/train/trainer_checkpoint.h"

namespace trident::train::grpo {

namespace {
// "0", "1", "2", "3+": the carry buckets' names in the metrics.
std::string carry_bucket_name(int bucket) {
  return std::to_string(bucket) + (bucket == kCarryBuckets - 1 ? "+" : "");
}

std::string progress_line(const GrpoStepMetrics& m, int64_t steps, const ProgressMeter& meter) {
  char line[320];
  std::snprintf(
      line, sizeof line,
      "grpo step %lld/%lld | reward %.3f acc %.3f fmt %.3f flat %.2f | kl %.4f clip %.3f | "
      "len %.1f ent %.3f | rollout %.2fs update %.2fs | eta %s",
      static_cast<long long>(m.step), static_cast<long long>(steps), m.reward, m.accuracy,
      m.format_rate, m.zero_variance_groups, m.kl, m.clip_fraction, m.completion_length, m.entropy,
      m.rollout_seconds, m.update_seconds,
      ProgressMeter::format_duration(meter.eta_seconds(m.step)).c_str());
  return line;
}

// The model to build: the resumed checkpoint's, --init's (checkpoint or HF directory), or the
// config's.
config::ModelConfig run_model_config(const config::TridentConfig& config,
                                     const std::string& resume_path, const std::string& init) {
  if (!resume_path.empty()) return io::read_checkpoint_state(resume_path).config.model();
  return init.empty() ? config.model() : init_model_config(init);
}

}  // namespace

nlohmann::json grpo_metrics_record(const GrpoStepMetrics& m) {
  nlohmann::json by_carries = nlohmann::json::object();
  for (int b = 0; b < kCarryBuckets; ++b) {
    if (m.accuracy_by_carries[b] >= 0) by_carries[carry_bucket_name(b)] = m.accuracy_by_carries[b];
  }
  return nlohmann::json{{"step", m.step},
                        {"reward", m.reward},
                        {"reward_std", m.reward_std},
                        {"group_reward_std", m.group_reward_std},
                        {"zero_variance_groups", m.zero_variance_groups},
                        {"accuracy", m.accuracy},
                        {"accuracy_by_carries", by_carries},
                        {"format_rate", m.format_rate},
                        {"kl", m.kl},
                        {"clip_fraction", m.clip_fraction},
                        {"completion_length", m.completion_length},
                        {"completion_length_max", m.completion_length_max},
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

void write_grpo_scalars(io::TensorBoardWriter& writer, const GrpoStepMetrics& m) {
  const nlohmann::json record = grpo_metrics_record(m);
  for (const auto& [name, value] : record.items()) {
    if (name == "step" || !(value.is_number() || value.is_boolean())) continue;
    writer.add_scalar("grpo/" + name,
                      value.is_boolean() ? (value.get<bool>() ? 1.0 : 0.0) : value.get<double>(),
                      m.step);
  }
  for (const auto& [bucket, accuracy] : record["accuracy_by_carries"].items()) {
    writer.add_scalar("grpo/accuracy_carries_" + bucket, accuracy.get<double>(), m.step);
  }
}

GrpoRunSummary run_grpo(const config::TridentConfig& config,
                        const parallel::ParallelContext& context, const GrpoRunOptions& options) {
  using parallel::MeshAxis;
  const std::string& init = options.init_hf_dir;
  const MPI_Comm job = context.job();
  const bool primary = context.primary();
  // Installed before the resume so that a signal arriving while loading is not lost.
  const StopSignalScope stop_signals;
  // A device that cannot be used stops the run before any file is touched.
  const Device device = training_device(config.train());
  const config::CheckpointConfig& checkpoint = config.checkpoint();
  const std::string resume_path = resolve_resume(checkpoint.resume(), checkpoint.dir(), job);
  // Claimed before the models are built: a checkpoint directory that cannot be written, or holds
  // another run's checkpoints, fails at start-up rather than at the first save.
  const io::CheckpointClaim claim = io::claim_checkpoint_dir(checkpoint.dir(), resume_path, job);
  const std::unique_ptr<models::DeepSeekV3Model> policy =
      build_policy(run_model_config(config, resume_path, init), config.parallel(),
                   config.train().seed(), context, model_precision(config.train()), device);
  if (resume_path.empty() && !init.empty()) {
    TLOG_INFO("policy initialised from ", load_init_weights(init, *policy, job));
  }
  // The reference model (β > 0) is the policy as the trainer finds it: the initial weights,
  // replaced by the checkpoint's reference when resuming.
  GrpoTrainer trainer(*policy, grpo_options(config), context, config.parallel());
  GrpoRunSummary summary;
  int64_t first_step = 1;
  if (!resume_path.empty()) {
    if (!init.empty()) TLOG_WARN("--init ", init, " ignored: resuming from ", resume_path);
    const GrpoCheckpointState resumed = load_grpo_checkpoint(resume_path, config, trainer, job);
    first_step = resumed.step + 1;
    summary.eval_accuracy_before = resumed.eval_accuracy_before;
    summary.eval_format_rate_before = resumed.eval_format_rate_before;
  }
  summary.resumed_from_step = first_step - 1;
  TLOG_INFO(precision_summary(config.train()));
  if (context.size(MeshAxis::Pp) > 1) {
    TLOG_INFO("pipeline parallel: ", context.size(MeshAxis::Pp), " rank(s), schedule '",
              config.parallel().schedule().empty() ? "1f1b" : config.parallel().schedule(), "'");
  }
  io::CollectiveWatchdog watchdog(job, config.parallel().comm_timeout_s());
  const auto save_checkpoint = [&](int64_t step) {
    save_grpo_checkpoint(config, trainer,
                         {step, trainer.resume_state(), summary.eval_accuracy_before,
                          summary.eval_format_rate_before},
                         job, claim.run_id, &watchdog);
  };
  const GrpoOptions& o = trainer.options();
  const bool resumed = first_step > 1;
  std::unique_ptr<io::JsonlWriter> jsonl;
  if (primary && !config.logging().metrics_path().empty()) {
    // A resumed run continues the metrics file of the run it resumes.
    jsonl = std::make_unique<io::JsonlWriter>(config.logging().metrics_path(), /*append=*/resumed);
  }
  std::unique_ptr<io::TensorBoardWriter> tensorboard;
  if (primary && !config.logging().tensorboard_dir().empty()) {
    tensorboard = std::make_unique<io::TensorBoardWriter>(config.logging().tensorboard_dir());
  }
  // Evaluation decodes the same problems on every rank; under EP their forwards pair up.
  const auto evaluate = [&] {
    return evaluate_arithmetic(trainer.decoder(), o.seed, config.grpo().eval_prompts(), o.task,
                               o.sampling, &trainer.lockstep());
  };
  const int64_t eval_prompts = config.grpo().eval_prompts();
  if (eval_prompts > 0 && !resumed) {
    const EvalResult e = evaluate();
    summary.eval_accuracy_before = e.accuracy;
    summary.eval_format_rate_before = e.format_rate;
    TLOG_INFO("held-out greedy accuracy before GRPO: ", e.accuracy, ", format rate ",
              e.format_rate);
  }
  const int64_t steps = config.grpo().steps();
  ProgressMeter meter(steps, first_step);
  for (int64_t step = first_step; step <= steps; ++step) {
    const GrpoStepMetrics m = trainer.step(step);
    meter.tick();
    summary.steps.push_back(m);
    if (jsonl) jsonl->write(grpo_metrics_record(m));
    if (tensorboard) write_grpo_scalars(*tensorboard, m);
    TLOG_INFO(progress_line(m, steps, meter));
    const int64_t every = checkpoint.every();
    const bool saved = every > 0 && step % every == 0 && step != steps;
    if (saved) save_checkpoint(step);
    // Every rank stops after the same step.
    summary.stop_signal = agree_on_stop(context);
    if (summary.stop_signal != 0) {
      TLOG_WARN(stop_signal_name(summary.stop_signal), " received: saving a checkpoint after GRPO ",
                "step ", step, " and stopping");
      if (checkpoint.dir().empty()) {
        TLOG_WARN("checkpoint.dir is not set: stopping without a checkpoint");
      }
      if (!saved) save_checkpoint(step);
      if (tensorboard) tensorboard->flush();
      return summary;
    }
  }
  if (steps >= first_step) save_checkpoint(steps);
  if (eval_prompts > 0) {
    const EvalResult e = evaluate();
    summary.eval_accuracy_after = e.accuracy;
    TLOG_INFO("held-out greedy accuracy after GRPO: ", e.accuracy, ", format rate ", e.format_rate);
    if (jsonl) {
      jsonl->write(nlohmann::json{{"eval_accuracy_before", summary.eval_accuracy_before},
                                  {"eval_format_rate_before", summary.eval_format_rate_before},
                                  {"eval_accuracy", e.accuracy},
                                  {"eval_format_rate", e.format_rate},
                                  {"eval_prompts", eval_prompts}});
    }
    if (tensorboard) {
      tensorboard->add_scalar("eval/accuracy", e.accuracy, steps);
      tensorboard->add_scalar("eval/format_rate", e.format_rate, steps);
    }
  }
  if (tensorboard) tensorboard->flush();
  if (!options.save_hf_dir.empty()) {
    const bool sharded = context.size(MeshAxis::Tp) > 1 || context.size(MeshAxis::Ep) > 1 ||
                         context.size(MeshAxis::Pp) > 1;
    save_policy_hf(config, *policy, options.save_hf_dir, sharded, primary, job);
    TLOG_INFO("saved HF weights to ", options.save_hf_dir);
  }
  return summary;
}

}  // namespace trident::train::grpo
