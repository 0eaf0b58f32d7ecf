#include "launch/rank_layout.h"

#include <mpi.h>

#include <cstdio>
#include <sstream>

#include "launch/rank_threads.h"
#include "ops/cpu_threads.h"
#include "runtime/core/logging.h"

namespace trident::launch {

namespace {
std::string host_name() {
  char name[MPI_MAX_PROCESSOR_NAME] = {};
  int length = 0;
  if (MPI_Get_processor_name(name, &length) != MPI_SUCCESS) return "unknown";
  return std::string(name, static_cast<size_t>(length));
}
}  // namespace

std::string rank_layout_line(const parallel::Mesh& mesh) {
  const parallel::MeshCoords& c = mesh.coords();
  std::ostringstream out;
  // The training step runs on the CPU ops; a GPU step would take cuda:<local_rank>.
  const std::string device = "cpu";
  out << "trident layout: rank=" << c.rank << " world=" << mesh.world_size()
      << " host=" << host_name() << " node=" << mesh.node_index() << "/" << mesh.num_nodes()
      << " local_rank=" << mesh.node().rank() << " pp=" << c.pp << " dp=" << c.dp << " tp=" << c.tp
      << " ep=" << c.ep << " edp=" << c.edp << " etp=" << c.etp << " device=" << device
      << " threads=" << ops::cpu_threads().threads;
  return out.str();
}

void print_rank_layout(const parallel::Mesh& mesh) {
  const std::string line = rank_layout_line(mesh) + "\n";
  std::fputs(line.c_str(), stderr);
  std::fflush(stderr);
}

void start_rank(const parallel::Mesh& mesh, bool primary) {
  const ops::CpuThreads threads = configure_rank_threads(mesh);
  print_rank_layout(mesh);
  if (primary) {
    TLOG_INFO("CPU threads per rank: ", threads.threads, " (", threads.reason, "; ", threads.blas,
              ")");
  }
}

}  // namespace trident::launch
