#pragma once
// A whole pretraining / SFT run: the step loop with the progress line, JSONL metrics,
// TensorBoard scalars, periodic held-out evaluation, checkpoints (config `checkpoint`: every N
// steps, at the end and on SIGTERM / SIGUSR1; resume from one with checkpoint.resume) and the
// final weight export.
//
// Every rank calls run_pretrain with the same config and the run's parallel context; every rank
// computes the same metrics, only the primary rank writes files.
#include <string>

#include "parallel/context.h"
#include "runtime/config/trident.pb.h"
#include "runtime/train/peak_flops.h"

namespace trident::train {

struct PretrainOptions {
  std::string init_hf_dir;  // start from these HF weights instead of the random init
  std::string save_hf_dir;  // export the final weights here (config.json + safetensors)
  int64_t eval_batches = 2;
  // Gradient bucket size in bytes; 0 takes parallel.dp_bucket_mb.
  int64_t bucket_bytes = 0;
  // Peak FLOP/s of one rank, the denominator of the MFU in the progress line and metrics.
  double peak_flops_per_rank = kDefaultPeakTflops * 1e12;
};

struct PretrainSummary {
  int64_t steps = 0;
  double first_loss = 0.0;
  double last_loss = 0.0;
  double first_eval_loss = 0.0;  // before training (0 if no held-out data, or resumed)
  double last_eval_loss = 0.0;
  double seconds = 0.0;
  double tokens_per_second = 0.0;
  int64_t resumed_from_step = 0;  // 0: started fresh
  // Non-zero: the run stopped early on this signal after saving a checkpoint (the command
  // then exits with kExitStoppedBySignal).
  int stop_signal = 0;
  std::string last_checkpoint;  // the newest checkpoint this run wrote (empty: none)
};

// The rank that writes files is context.primary(); checkpoints are written and read
// collectively over context.job(), and the ranks agree over it on stopping after a SIGTERM /
// SIGUSR1 (stop_signal.h).
PretrainSummary run_pretrain(const config::TridentConfig& config,
                             const parallel::ParallelContext& context,
                             const PretrainOptions& options);

}  // namespace trident::train
