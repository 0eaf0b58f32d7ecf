// trident grpo: GRPO reinforcement learning on the arithmetic task (docs/grpo.md), on one rank
// or over every rank mpirun started, on any layout pretraining runs (parallel.pp × parallel.dp
// × parallel.tp = number of ranks, routed experts over parallel.ep, any parallel.schedule).
#include <memory>

#include "launch/cli.h"
#include "launch/commands/config_flags.h"
#include "launch/commands/run_flags.h"
#include "launch/rank_layout.h"
#include "launch/trace_session.h"
#include "parallel/context.h"
#include "parallel/mpi_session.h"
#include "runtime/core/logging.h"
#include "runtime/train/grpo/grpo_run.h"
#include "runtime/train/stop_signal.h"

TRIDENT_COMMAND(grpo_command, "grpo", "GRPO reinforcement learning with rule or external rewards") {
  trident::launch::ArgParser parser("grpo");
  trident::launch::ConfigFlags config_flags;
  config_flags.add_to(parser);
  trident::launch::RunFlags run_flags;
  run_flags.add_to(parser,
                   "write the policy as checkpoints to DIR (checkpoint.dir, checkpoint.every)");
  trident::train::grpo::GrpoRunOptions options;
  parser.add_string("--init", &options.init_hf_dir,
                    "start from HF weights in DIR or a Trident checkpoint FILE (step_<N>.h5)");
  parser.add_string("--init-hf", &options.init_hf_dir,
                    "start from HF weights (config.json + safetensors) in DIR");
  parser.add_string("--save-hf", &options.save_hf_dir,
                    "export the trained policy as HF safetensors to DIR");
  if (!parser.parse(args)) return 0;
  trident::parallel::MpiSession session(nullptr, nullptr);
  trident::config::TridentConfig config = config_flags.load(session.world_size());
  run_flags.apply(config);
  trident::configure_logging({trident::parse_log_level(config.logging().level()), false});
  // Declared after the session, so every communicator is gone before MPI is finalised.
  const auto context = trident::parallel::make_parallel_context(config);
  trident::launch::start_rank(*context->mesh(), context->primary(), config.train().device());
  trident::launch::TraceSession trace(config.logging().trace_dir(), *context);
  const trident::train::grpo::GrpoRunSummary summary =
      trident::train::grpo::run_grpo(config, *context, options);
  trace.write();
  // Stopped by SIGTERM / SIGUSR1 / SIGINT after saving: a distinct status, as for pretrain.
  return summary.stop_signal != 0 ? trident::train::kExitStoppedBySignal : 0;
}
