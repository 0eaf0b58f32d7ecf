#include "runtime/train/pretrain_run.h"

#include <cstdio>
#include <memory>
#include <nlohmann/json.hpp>

#include "runtime/core/error.h"
#include "runtime/core/logging.h"
#include "runtime/io/checkpoint_claim.h"
#include "runtime/io/collective_watchdog.h"
#include "runtime/io/hf_weights.h"
#include "runtime/io/hf_weights_sharded.h"
#include "runtime/io/jsonl.h"
#include "runtime/io/tensorboard.h"
#include "runtime/train/data_setup.h"
#include "runtime/train/mfu.h"
#include "runtime/train/placement.h"
#include "runtime/train/precision.h"
#include "runtime/train/progress.h"
#include "runtime/train/stop_signal.h"
#include "runtime/train/trainer.h"
#include "runtime/train/trainer_checkpoint.h"

namespace trident::train {

namespace {
nlohmann::json metrics_record(const StepMetrics& m, const ThroughputModel& throughput) {
  return nlohmann::json{
      {"step", m.step},
      {"loss", m.loss},
      {"lm_loss", m.lm_loss},
      {"mtp_loss", m.mtp_loss},
      {"balance_loss", m.balance_loss},
      {"grad_norm", m.grad_norm},
      {"lr", m.lr},
      {"tokens", m.tokens},
      {"tokens_per_s", m.tokens_per_second},
      {"step_s", m.step_seconds},
      {"model_tflops_per_s", throughput.model_flops_per_second(m.tokens_per_second) / 1e12},
      {"mfu", throughput.mfu(m.tokens_per_second)},
      {"expert_load_max_over_mean", m.expert_load_max_over_mean},
      {"grad_buckets", m.grad_buckets},
      {"grad_buckets_overlapped", m.grad_buckets_overlapped},
      {"skipped", m.skipped},
      {"skipped_steps", m.skipped_steps},
      {"memory_peak_bytes", m.memory_peak_bytes},
      {"memory_reserved_bytes", m.memory_reserved_bytes},
      {"memory_fragmentation", m.memory_fragmentation},
      {"system_allocations", m.system_allocations},
      {"layer_load_max_over_mean", m.layer_load_max_over_mean}};
}

// "step 10/100 | loss … | 1234 tok/s | mfu 12.3% | … | eta 3m05s": tokens/s and MFU of this
// step, ETA from the mean step time so far.
std::string format_progress(const StepMetrics& m, int64_t total, const ProgressMeter& meter,
                            const ThroughputModel& throughput) {
  char line[360];
  std::snprintf(line, sizeof(line),
                "step %5lld/%lld | loss %.4f (lm %.4f mtp %.4f) | gnorm %.3f | lr %.2e | "
                "%.0f tok/s | mfu %.2f%% | load max/mean %.2f | eta %s",
                static_cast<long long>(m.step), static_cast<long long>(total), m.loss, m.lm_loss,
                m.mtp_loss, m.grad_norm, m.lr, m.tokens_per_second,
                100.0 * throughput.mfu(m.tokens_per_second), m.expert_load_max_over_mean,
                ProgressMeter::format_duration(meter.eta_seconds(m.step)).c_str());
  return line;
}
// What the run's layout does, once at start-up.
void log_layout(const Trainer& trainer) {
  using parallel::MeshAxis;
  const parallel::ParallelContext& context = trainer.context();
  const models::parallelize::PipelinePartition& partition = trainer.partition();
  if (context.size(MeshAxis::Pp) > 1) {
    std::string layers;
    for (const models::parallelize::StageRange& stage : partition.stages) {
      if (!layers.empty()) layers += '/';
      layers += std::to_string(stage.num_layers());
    }
    TLOG_INFO("pipeline parallel: ", context.size(MeshAxis::Pp), " rank(s), schedule '",
              trainer.engine().schedule_name(), "' on a ", partition.layout.name(), " layout of ",
              partition.layout.num_stages(), " stages, layers per stage ", layers);
  }
  if (context.size(MeshAxis::Tp) > 1) {
    TLOG_INFO("tensor parallel: ", context.size(MeshAxis::Tp),
              " rank(s) per data-parallel replica");
  }
  if (context.size(MeshAxis::Ep) > 1) {
    TLOG_INFO("expert parallel: ", context.size(MeshAxis::Ep),
              " rank(s), expert gradients reduced over ", context.size(MeshAxis::Edp),
              " expert-data-parallel rank(s)");
  }
  const Optimizer& optimizer = trainer.optimizer();
  const int dp = context.size(MeshAxis::Dp);
  if (dp > 1 || optimizer.zero1()) {
    TLOG_INFO("data parallel: ", dp, " rank(s) × ", trainer.config().train().global_batch() / dp,
              " rows, ", optimizer.reduction_stats().buckets, " gradient bucket(s), ZeRO-1 ",
              optimizer.zero1() ? "on" : "off", ", optimizer state ",
              optimizer.state_bytes() / 1024, " KiB per rank");
  }
}
}  // namespace

PretrainSummary run_pretrain(const config::TridentConfig& config,
                             const parallel::ParallelContext& context,
                             const PretrainOptions& options) {
  const MPI_Comm job = context.job();
  const bool primary = context.primary();
  const bool pipelined = config.parallel().pp() > 1;
  // Under pp every pipeline rank writes its stages' tensors into its own shard; the shards hold
  // whole tensors, so TP and EP slices are not exported that way.
  TRIDENT_USER_CHECK(!pipelined || options.save_hf_dir.empty() ||
                         (config.parallel().tp() <= 1 && config.parallel().ep() <= 1),
                     "--save-hf with parallel.pp = ", config.parallel().pp(), " and parallel.tp = ",
                     config.parallel().tp(), ", parallel.ep = ", config.parallel().ep(),
                     ": the pipeline export writes whole tensors per stage (use parallel.tp = 1 "
                     "and parallel.ep = 1, or export a checkpoint with `trident convert`)");
  // A device that cannot be used stops the run before any file is touched.
  training_device(config.train());
  // The checkpoint directory is claimed before the model is built: one that cannot be written,
  // or holds another run's checkpoints, fails at start-up rather than at the first save.
  const config::CheckpointConfig& checkpoint = config.checkpoint();
  const std::string resume_path = resolve_resume(checkpoint.resume(), checkpoint.dir(), job);
  const io::CheckpointClaim claim = io::claim_checkpoint_dir(checkpoint.dir(), resume_path, job);
  std::unique_ptr<io::BatchSampler> eval_sampler = make_eval_sampler(config);
  Trainer trainer(config, context, make_train_sampler(config), std::move(eval_sampler),
                  options.bucket_bytes);
  // Installed before the resume so that a signal arriving while loading is not lost.
  const StopSignalScope stop_signals;
  if (!resume_path.empty()) {
    if (!options.init_hf_dir.empty()) {
      TLOG_WARN("--init-hf ", options.init_hf_dir, " ignored: resuming from ", resume_path);
    }
    load_trainer_checkpoint(trainer, resume_path, job);
  } else if (!options.init_hf_dir.empty()) {
    io::load_hf_weights(trainer.model().params(), options.init_hf_dir);
    TLOG_INFO("initialised from HF weights in ", options.init_hf_dir);
  }
  const auto& train = config.train();
  const auto counts = trainer.model().registry().counts();
  TLOG_INFO("model '", config.model().name(), "': ", counts.total, " parameters (",
            counts.activated, " activated per token, MTP ", counts.mtp, "); ", train.steps(),
            " steps of ", train.global_batch(), " × ", train.seq_len(), " tokens, mode ",
            train.mode());
  TLOG_INFO(precision_summary(train));
  log_layout(trainer);

  const int64_t first_step = trainer.step_index() + 1;
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

  PretrainSummary summary;
  summary.resumed_from_step = first_step - 1;
  io::CheckpointSaveOptions save_options;
  save_options.keep_last = checkpoint.keep_last();
  save_options.run_id = claim.run_id;
  io::CollectiveWatchdog watchdog(job, config.parallel().comm_timeout_s());
  save_options.watchdog = &watchdog;
  auto save = [&] {
    if (checkpoint.dir().empty()) return;
    summary.last_checkpoint = save_trainer_checkpoint(trainer, checkpoint.dir(), job, save_options);
  };
  const bool has_eval = make_eval_sampler(config) != nullptr;
  if (has_eval && !resumed) {
    summary.first_eval_loss = trainer.evaluate(options.eval_batches).lm_loss;
    TLOG_INFO("held-out loss before training: ", summary.first_eval_loss);
  }
  ProgressMeter meter(train.steps(), first_step);
  const ThroughputModel throughput = make_throughput_model(config, options.peak_flops_per_rank);
  const int64_t log_every = std::max<int64_t>(1, train.log_every());
  double tokens = 0.0;
  for (int64_t s = first_step; s <= train.steps(); ++s) {
    const StepMetrics m = trainer.step();
    meter.tick();
    tokens += static_cast<double>(m.tokens);
    if (s == first_step) summary.first_loss = m.loss;
    summary.last_loss = m.loss;
    if (jsonl) jsonl->write(metrics_record(m, throughput));
    if (tensorboard) {
      tensorboard->add_scalar("train/loss", m.loss, s);
      tensorboard->add_scalar("train/lm_loss", m.lm_loss, s);
      tensorboard->add_scalar("train/mtp_loss", m.mtp_loss, s);
      tensorboard->add_scalar("train/grad_norm", m.grad_norm, s);
      tensorboard->add_scalar("train/lr", m.lr, s);
      tensorboard->add_scalar("train/tokens_per_s", m.tokens_per_second, s);
      tensorboard->add_scalar("train/mfu", throughput.mfu(m.tokens_per_second), s);
      tensorboard->add_scalar("moe/load_max_over_mean", m.expert_load_max_over_mean, s);
    }
    if (s % log_every == 0 || s == first_step || s == train.steps()) {
      TLOG_INFO(format_progress(m, train.steps(), meter, throughput));
    }
    if (has_eval && train.eval_every() > 0 && s % train.eval_every() == 0 && s != train.steps()) {
      const EvalMetrics eval = trainer.evaluate(options.eval_batches);
      TLOG_INFO("step ", s, ": held-out loss ", eval.lm_loss);
      if (jsonl) jsonl->write({{"step", s}, {"eval_lm_loss", eval.lm_loss}});
      if (tensorboard) tensorboard->add_scalar("eval/lm_loss", eval.lm_loss, s);
    }
    // Every rank takes part in the agreement every step: a signal seen by any rank stops all of
    // them after this same step.
    summary.stop_signal = agree_on_stop(context);
    if (summary.stop_signal != 0) {
      TLOG_WARN(stop_signal_name(summary.stop_signal), " received: saving a checkpoint after step ",
                s, " and stopping");
      if (checkpoint.dir().empty()) {
        TLOG_WARN("checkpoint.dir is not set: stopping without a checkpoint");
      }
      save();
      break;
    }
    if (checkpoint.every() > 0 && s % checkpoint.every() == 0 && s != train.steps()) save();
  }
  if (summary.stop_signal == 0 && trainer.step_index() > summary.resumed_from_step) save();
  summary.steps = trainer.step_index() - summary.resumed_from_step;
  summary.seconds = meter.elapsed_seconds();
  summary.tokens_per_second = summary.seconds > 0 ? tokens / summary.seconds : 0.0;
  if (summary.stop_signal != 0) {
    if (tensorboard) tensorboard->flush();
    TLOG_INFO("stopped at step ", trainer.step_index(), " of ", train.steps(),
              summary.last_checkpoint.empty()
                  ? std::string()
                  : "; resume with --resume auto from " + summary.last_checkpoint);
    return summary;
  }
  if (has_eval) {
    summary.last_eval_loss = trainer.evaluate(options.eval_batches).lm_loss;
    if (resumed) {
      TLOG_INFO("held-out loss after training: ", summary.last_eval_loss);
    } else {
      TLOG_INFO("held-out loss after training: ", summary.last_eval_loss,
                " (before: ", summary.first_eval_loss, ")");
    }
    if (jsonl) jsonl->write({{"step", train.steps()}, {"eval_lm_loss", summary.last_eval_loss}});
  }
  if (tensorboard) tensorboard->flush();
  TLOG_INFO("trained ", summary.steps, " steps in ",
            ProgressMeter::format_duration(summary.seconds), " (",
            static_cast<long long>(summary.tokens_per_second), " tokens/s); loss ",
            summary.first_loss, " -> ", summary.last_loss);
  if (pipelined && !options.save_hf_dir.empty()) {
    io::save_hf_weights_sharded(trainer.model().params(), options.save_hf_dir, job);
    TLOG_INFO("saved HF weights to ", options.save_hf_dir, " (one shard per pipeline rank)");
  } else if (primary && !options.save_hf_dir.empty()) {
    io::save_hf_weights(trainer.model().params(), options.save_hf_dir);
    TLOG_INFO("saved HF weights to ", options.save_hf_dir);
  }
  return summary;
}

}  // namespace trident::train
