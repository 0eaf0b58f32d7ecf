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

std::string rank_layout_line(const parallel::Mesh& mesh, const std::string& train_device) {
  const parallel::MeshCoords& c = mesh.coords();
  std::ostringstream out;
  // One GPU per process: the runtime's current device, 0 (train.device = "cuda" runs one rank).
  const std::string device = train_device == "cuda" ? "cuda:0" : "cpu";
  out << "trident layout: rank=" << c.rank << " world=" << mesh.world_size()
      << " host=" << host_name() << " node=" << mesh.node_index() << "/" << mesh.num_nodes()
      << " local_rank=" << mesh.node().rank() << " pp=" << c.pp << " dp=" << c.dp << " tp=" << c.tp
      << " ep=" << c.ep << " edp=" << c.edp << " etp=" << c.etp << " device=" << device
      << " threads=" << ops::cpu_threads().threads;
  return out.str();
}

void print_rank_layout(const parallel::Mesh& mesh, const std::string& train_device) {
  const std::string line = rank_layout_line(mesh, train_device) + "\n";
  std::fputs(line.c_str(), stderr);
  std::fflush(stderr);
}

void start_rank(const parallel::Mesh& mesh, bool primary, const std::string& train_device) {
  const ops::CpuThreads threads = configure_rank_threads(mesh);
  print_rank_layout(mesh, train_device);
  if (primary) {
    TLOG_INFO("CPU threads per rank: ", threads.threads, " (", threads.reason, "; ", threads.blas,
              ")");
  }
}

}  // namespace trident::launch
