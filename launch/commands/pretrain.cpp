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
#include "launch/fault_injection.h"
#include "launch/rank_layout.h"
#include "parallel/comm/mpi_backend.h"
#include "parallel/comm/tracing_communicator.h"
#include "parallel/mesh.h"
#include "parallel/mpi_session.h"
#include "runtime/core/logging.h"
#include "runtime/core/trace.h"
#include "runtime/train/pretrain_run.h"
#include "runtime/train/stop_signal.h"

TRIDENT_COMMAND(
    pretrain_command, "pretrain",
    "train the model (pretraining or SFT), data × tensor / expert parallel under mpirun") {
  trident::cli::ArgParser parser("pretrain");
  trident::cli::ConfigFlags config_flags;
  config_flags.add_to(parser);
  trident::train::PretrainOptions options;
  std::string metrics, tensorboard, log_level, resume, checkpoint_dir, trace_dir;
  std::string peak_tflops = std::to_string(trident::train::kDefaultPeakTflops);
  long long bucket_kb = 0;
  parser.add_string("--init-hf", &options.init_hf_dir,
                    "start from HF weights (config.json + safetensors) in DIR");
  parser.add_string("--save-hf", &options.save_hf_dir,
                    "export the trained weights as HF safetensors to DIR");
  parser.add_string("--metrics", &metrics,
                    "write per-step metrics as JSONL to FILE (logging.metrics_path)");
  parser.add_string("--tensorboard", &tensorboard, "write TensorBoard event files to DIR");
  parser.add_string("--trace", &trace_dir,
                    "write a Chrome/Perfetto trace per rank to DIR/trace_rank<N>.json "
                    "(logging.trace_dir)");
  parser.add_string("--log-level", &log_level, "debug | info | warn | error");
  parser.add_string("--resume", &resume,
                    "auto (newest valid checkpoint in checkpoint.dir) or a step_<N>.h5 path "
                    "(checkpoint.resume)");
  parser.add_string("--checkpoint-dir", &checkpoint_dir,
                    "write checkpoints to DIR (checkpoint.dir; every checkpoint.every steps, at "
                    "the end, and on SIGTERM / SIGUSR1)");
  parser.add_int("--bucket-kb", &bucket_kb,
                 "gradient bucket size in KiB (default: parallel.dp_bucket_mb)");
  parser.add_string("--peak-tflops", &peak_tflops,
                    "peak TFLOPS of one rank for the MFU, or 'measure' (a short GEMM at start-up; "
                    "default: this project's CPU development machine, docs/launch.md)");
  if (!parser.parse(args)) return 0;

  trident::parallel::MpiSession session(nullptr, nullptr);
  trident::config::TridentConfig config = config_flags.load(session.world_size());
  if (!metrics.empty()) config.mutable_logging()->set_metrics_path(metrics);
  if (!tensorboard.empty()) config.mutable_logging()->set_tensorboard_dir(tensorboard);
  if (!log_level.empty()) config.mutable_logging()->set_level(log_level);
  if (!resume.empty()) config.mutable_checkpoint()->set_resume(resume);
  if (!checkpoint_dir.empty()) config.mutable_checkpoint()->set_dir(checkpoint_dir);
  if (!trace_dir.empty()) config.mutable_logging()->set_trace_dir(trace_dir);
  trident::configure_logging({trident::parse_log_level(config.logging().level()), false});
  // Refused before any communicator exists, identically on every rank.
  trident::train::check_pretrain_layout(config.parallel());
  TRIDENT_USER_CHECK(bucket_kb >= 0, "--bucket-kb must be ≥ 0, got ", bucket_kb);

  trident::parallel::MeshOptions mesh_options;
  mesh_options.ranks_per_node = static_cast<int>(config.parallel().ranks_per_node());
  const trident::parallel::Mesh mesh(trident::parallel::mesh_sizes_from_config(config.parallel()),
                                     mesh_options);
  trident::cli::print_rank_layout(mesh);
  trident::parallel::CommOptions comm_options;
  comm_options.timeout_seconds = config.parallel().comm_timeout_s();
  // Declared after the session and the mesh, so the communicator is gone before they are.
  trident::train::PretrainOptions run_options = options;
  run_options.dp = std::make_shared<trident::parallel::MpiBackend>(mesh.dp(), comm_options);
  if (mesh.layout().sizes().pp > 1) {
    run_options.pp = std::make_shared<trident::parallel::MpiBackend>(mesh.pp(), comm_options);
  }
  if (mesh.layout().sizes().tp > 1) {
    run_options.tp = std::make_shared<trident::parallel::MpiBackend>(mesh.tp(), comm_options);
  }
  if (mesh.layout().sizes().ep > 1) {
    run_options.ep = std::make_shared<trident::parallel::MpiBackend>(mesh.ep(), comm_options);
    run_options.edp = std::make_shared<trident::parallel::MpiBackend>(mesh.edp(), comm_options);
  }
  // With logging.trace_dir, every communicator's operations go on the trace's comm track.
  std::vector<std::shared_ptr<trident::parallel::TracingCommunicator>> traced;
  const bool tracing = !config.logging().trace_dir().empty();
  if (tracing) {
    const auto trace = [&traced](std::shared_ptr<trident::parallel::Communicator>& comm,
                                 const char* axis) {
      if (comm == nullptr) return;
      traced.push_back(std::make_shared<trident::parallel::TracingCommunicator>(comm, axis));
      comm = traced.back();
    };
    trace(run_options.dp, "dp");
    trace(run_options.tp, "tp");
    trace(run_options.ep, "ep");
    trace(run_options.edp, "edp");
    trace(run_options.pp, "pp");
    trident::Trace::enable(true);
  }
  trident::cli::inject_comm_faults(run_options);  // TRIDENT_FAULT only (tests/faults)
  run_options.primary = mesh.rank() == 0;
  run_options.bucket_bytes = static_cast<int64_t>(bucket_kb) * 1024;
  run_options.peak_flops_per_rank = trident::train::parse_peak_flops(peak_tflops);
  const trident::train::PretrainSummary summary = trident::train::run_pretrain(config, run_options);
  if (tracing) {
    trident::Trace::enable(false);
    for (const auto& comm : traced) comm->drain();
    trident::Trace::write(config.logging().trace_dir(), mesh.rank());
  }
  // Stopped by SIGTERM / SIGUSR1 after saving: a distinct status, so a job script can requeue.
  return summary.stop_signal != 0 ? trident::train::kExitStoppedBySignal : 0;
}
