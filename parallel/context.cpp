#include "parallel/context.h"

#include "parallel/comm/fault_point_communicator.h"
#include "parallel/comm/mpi_backend.h"
#include "parallel/comm/tracing_communicator.h"
#include "runtime/config/config.h"
#include "runtime/core/fault_injection.h"

namespace trident::parallel {

ParallelContext::ParallelContext() : layout_(MeshSizes{}, 1), coords_(layout_.coords(0)) {}

ParallelContext::ParallelContext(const MeshSizes& sizes, const ContextOptions& options)
    : layout_(MeshSizes{}, 1) {
  MeshOptions mesh_options;
  mesh_options.ranks_per_node = options.ranks_per_node;
  mesh_ = std::make_unique<Mesh>(sizes, mesh_options);
  layout_ = mesh_->layout();
  coords_ = mesh_->coords();
  job_ = MPI_COMM_WORLD;
  traced_ = options.trace;
  for (const MeshAxis axis : kAllMeshAxes) {
    if (layout_.axis_size(axis) < 2) continue;
    std::shared_ptr<comm::Communicator> group =
        std::make_shared<comm::MpiBackend>(mesh_->group(axis), options.comm);
    if (!options.link.is_free()) group = std::make_shared<comm::DelayedLink>(group, options.link);
    // TRIDENT_FAULT only (tests/faults): operations become points where a rank can be killed.
    if (fault_injection_armed()) group = std::make_shared<comm::FaultPointCommunicator>(group);
    if (traced_) {
      group = std::make_shared<comm::TracingCommunicator>(std::move(group), mesh_axis_name(axis));
    }
    groups_[index(axis)] = std::move(group);
  }
}

ParallelContext::~ParallelContext() = default;

const ParallelContext& ParallelContext::one_rank() {
  static const ParallelContext context;
  return context;
}

int ParallelContext::rank(MeshAxis axis) const {
  const comm::Communicator* g = group(axis);
  return g != nullptr ? g->rank() : 0;
}

void ParallelContext::drain_traces() const {
  if (!traced_) return;
  for (const auto& group : groups_) {
    if (auto* traced = dynamic_cast<comm::TracingCommunicator*>(group.get())) traced->drain();
  }
}

std::unique_ptr<ParallelContext> make_parallel_context(const config::TridentConfig& config,
                                                       const comm::LinkModel& link) {
  config::check_runnable_layout(config);
  ContextOptions options;
  options.link = link;
  options.ranks_per_node = static_cast<int>(config.parallel().ranks_per_node());
  options.comm.timeout_seconds = config.parallel().comm_timeout_s();
  options.trace = !config.logging().trace_dir().empty();
  return std::make_unique<ParallelContext>(mesh_sizes_from_config(config.parallel()), options);
}

}  // namespace trident::parallel
