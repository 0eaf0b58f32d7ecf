#pragma once
// The flags of the commands that run a training job (pretrain, grpo): where metrics, traces
// and checkpoints go, where a run resumes from, and how much to log. Each flag sets its config
// field, so the config file and the command line say the same thing.
#include <string>

#include "launch/cli.h"
#include "runtime/config/trident.pb.h"

namespace trident::launch {

struct RunFlags {
  std::string metrics;
  std::string tensorboard;
  std::string trace_dir;
  std::string checkpoint_dir;
  std::string resume;
  std::string log_level;

  // `checkpoints` says what --checkpoint-dir writes for this command.
  void add_to(ArgParser& parser, const std::string& checkpoints) {
    parser.add_string("--metrics", &metrics,
                      "write per-step metrics as JSONL to FILE (logging.metrics_path)");
    parser.add_string("--tensorboard", &tensorboard,
                      "write TensorBoard event files to DIR (logging.tensorboard_dir)");
    parser.add_string("--trace", &trace_dir,
                      "write a Chrome/Perfetto trace per rank to DIR/trace_rank<N>.json "
                      "(logging.trace_dir)");
    parser.add_string("--checkpoint-dir", &checkpoint_dir, checkpoints);
    parser.add_string("--resume", &resume,
                      "auto (newest valid checkpoint in checkpoint.dir) or a step_<N>.h5 path "
                      "(checkpoint.resume)");
    parser.add_string("--log-level", &log_level, "debug | info | warn | error");
  }
  void apply(config::TridentConfig& config) const {
    if (!metrics.empty()) config.mutable_logging()->set_metrics_path(metrics);
    if (!tensorboard.empty()) config.mutable_logging()->set_tensorboard_dir(tensorboard);
    if (!trace_dir.empty()) config.mutable_logging()->set_trace_dir(trace_dir);
    if (!checkpoint_dir.empty()) config.mutable_checkpoint()->set_dir(checkpoint_dir);
    if (!resume.empty()) config.mutable_checkpoint()->set_resume(resume);
    if (!log_level.empty()) config.mutable_logging()->set_level(log_level);
  }
};

}  // namespace trident::launch
