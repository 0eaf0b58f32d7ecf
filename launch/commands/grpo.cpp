// trident grpo: GRPO reinforcement learning on the arithmetic task (docs/grpo.md), on one rank
// or over every rank mpirun started (parallel.dp × parallel.tp = number of ranks), optionally
// with the routed experts split over parallel.ep, or the layers over parallel.pp stages
// (parallel.pp × parallel.dp × parallel.tp = number of ranks; ep > 1 not with both pp and tp).
#include <memory>

#include "launch/cli.h"
#include "launch/commands/config_flags.h"
#include "parallel/comm/mpi_backend.h"
#include "parallel/mesh.h"
#include "parallel/mpi_session.h"
#include "runtime/core/logging.h"
#include "runtime/train/grpo/grpo_run.h"
#include "runtime/train/stop_signal.h"

TRIDENT_COMMAND(grpo_command, "grpo", "GRPO reinforcement learning with rule or external rewards") {
  trident::cli::ArgParser parser("grpo");
  trident::cli::ConfigFlags config_flags;
  config_flags.add_to(parser);
  trident::train::grpo::GrpoRunOptions options;
  std::string metrics, log_level;
  std::string checkpoint_dir;
  parser.add_string("--init", &options.init_hf_dir,
                    "start from HF weights in DIR or a Trident checkpoint FILE (step_<N>.h5)");
  parser.add_string("--init-hf", &options.init_hf_dir,
                    "start from HF weights (config.json + safetensors) in DIR");
  parser.add_string("--checkpoint-dir", &checkpoint_dir,
                    "write the policy as checkpoints to DIR (checkpoint.dir, checkpoint.every)");
  parser.add_string("--save-hf", &options.save_hf_dir,
                    "export the trained policy as HF safetensors to DIR");
  parser.add_string("--metrics", &metrics,
                    "write per-step metrics as JSONL to FILE (logging.metrics_path)");
  parser.add_string("--log-level", &log_level, "debug | info | warn | error");
  if (!parser.parse(args)) return 0;
  trident::parallel::MpiSession session(nullptr, nullptr);
  trident::config::TridentConfig config = config_flags.load(session.world_size());
  if (!checkpoint_dir.empty()) config.mutable_checkpoint()->set_dir(checkpoint_dir);
  if (!metrics.empty()) config.mutable_logging()->set_metrics_path(metrics);
  if (!log_level.empty()) config.mutable_logging()->set_level(log_level);
  trident::configure_logging({trident::parse_log_level(config.logging().level()), false});
  // Refused before any communicator exists, identically on every rank.
  trident::train::grpo::check_grpo_layout(config.parallel());
  trident::parallel::MeshOptions mesh_options;
  mesh_options.ranks_per_node = static_cast<int>(config.parallel().ranks_per_node());
  const trident::parallel::Mesh mesh(trident::parallel::mesh_sizes_from_config(config.parallel()),
                                     mesh_options);
  trident::parallel::CommOptions comm_options;
  comm_options.timeout_seconds = config.parallel().comm_timeout_s();
  // Declared after the session and the mesh, so the communicator is gone before they are.
  std::unique_ptr<trident::parallel::MpiBackend> dp;
  if (mesh.layout().sizes().dp > 1) {
    dp = std::make_unique<trident::parallel::MpiBackend>(mesh.dp(), comm_options);
  }
  options.dp = dp.get();
  std::unique_ptr<trident::parallel::MpiBackend> ep, edp;
  if (mesh.layout().sizes().ep > 1) {
    ep = std::make_unique<trident::parallel::MpiBackend>(mesh.ep(), comm_options);
    options.ep = ep.get();
    edp = std::make_unique<trident::parallel::MpiBackend>(mesh.edp(), comm_options);
    options.edp = edp.get();
  }
  std::unique_ptr<trident::parallel::MpiBackend> tp;
  if (mesh.layout().sizes().tp > 1) {
    tp = std::make_unique<trident::parallel::MpiBackend>(mesh.tp(), comm_options);
    options.tp = tp.get();
  }
  std::unique_ptr<trident::parallel::MpiBackend> pp;
  if (mesh.layout().sizes().pp > 1) {
    pp = std::make_unique<trident::parallel::MpiBackend>(mesh.pp(), comm_options);
    options.pp = pp.get();
  }
  options.job = mesh.world().get();
  options.primary = mesh.rank() == 0;
  // Stopped by SIGTERM / SIGUSR1 / SIGINT after saving: a distinct status, as for pretrain.
  return trident::train::grpo::run_grpo(config, options).stop_signal != 0
             ? trident::train::kExitStoppedBySignal
             : 0;
}
