// trident pretrain: pretraining or SFT (train.mode = "sft") of the configured model, on one
// rank or over every rank mpirun started, data × tensor parallel (parallel.dp × parallel.tp =
// number of ranks), with the MoE layers optionally expert parallel (parallel.ep dividing
// parallel.dp × parallel.tp) and the layers optionally split into pipeline stages (parallel.pp,
// docs/pipeline.md).
// Checkpoints (docs/training.md): --checkpoint-dir, --resume auto|PATH; SIGTERM / SIGUSR1 save
// at the next step boundary and exit with status 75.
#include <memory>

#include "launch/cli.h"
#include "launch/commands/config_flags.h"
#include "launch/commands/run_flags.h"
#include "launch/rank_layout.h"
#include "launch/trace_session.h"
#include "parallel/context.h"
#include "parallel/mpi_session.h"
#include "runtime/core/logging.h"
#include "runtime/train/pretrain_run.h"
#include "runtime/train/stop_signal.h"

TRIDENT_COMMAND(
    pretrain_command, "pretrain",
    "train the model (pretraining or SFT), data × tensor / expert parallel under mpirun") {
  trident::launch::ArgParser parser("pretrain");
  trident::launch::ConfigFlags config_flags;
  config_flags.add_to(parser);
  trident::launch::RunFlags run_flags;
  run_flags.add_to(parser,
                   "write checkpoints to DIR (checkpoint.dir; every checkpoint.every steps, at "
                   "the end, and on SIGTERM / SIGUSR1)");
  trident::train::PretrainOptions options;
  std::string peak_tflops = "auto";
  long long bucket_kb = 0;
  parser.add_string("--init-hf", &options.init_hf_dir,
                    "start from HF weights (config.json + safetensors) in DIR");
  parser.add_string("--save-hf", &options.save_hf_dir,
                    "export the trained weights as HF safetensors to DIR");
  parser.add_int("--bucket-kb", &bucket_kb,
                 "gradient bucket size in KiB (default: parallel.dp_bucket_mb)");
  parser.add_string("--peak-tflops", &peak_tflops,
                    "peak TFLOPS of one rank for the MFU, 'measure' (a short GEMM at start-up) or "
                    "'auto' (default: the GPU's dense bf16 peak with train.device = cuda, else "
                    "this project's CPU development machine; docs/launch.md)");
  if (!parser.parse(args)) return 0;

  trident::parallel::MpiSession session(nullptr, nullptr);
  trident::config::TridentConfig config = config_flags.load(session.world_size());
  run_flags.apply(config);
  trident::configure_logging({trident::parse_log_level(config.logging().level()), false});
  TRIDENT_USER_CHECK(bucket_kb >= 0, "--bucket-kb must be ≥ 0, got ", bucket_kb);
  // Declared after the session, so every communicator is gone before MPI is finalised.
  const auto context = trident::parallel::make_parallel_context(config);
  trident::launch::start_rank(*context->mesh(), context->primary(), config.train().device());
  options.bucket_bytes = static_cast<int64_t>(bucket_kb) * 1024;
  options.peak_flops_per_rank = trident::train::parse_peak_flops(
      peak_tflops,
      config.train().device() == "cuda" ? trident::Device::CUDA : trident::Device::CPU);
  trident::launch::TraceSession trace(config.logging().trace_dir(), *context);
  const trident::train::PretrainSummary summary =
      trident::train::run_pretrain(config, *context, options);
  trace.write();
  // Stopped by SIGTERM / SIGUSR1 / SIGINT after saving: a distinct status, so a job script can
  // requeue.
  return summary.stop_signal != 0 ? trident::train::kExitStoppedBySignal : 0;
}
