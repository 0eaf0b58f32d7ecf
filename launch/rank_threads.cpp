#include "launch/rank_threads.h"

#include <mpi.h>
#include <sched.h>

#include <cstdlib>
#include <vector>

#include "runtime/core/error.h"

namespace trident::launch {

int local_ranks_from_environment() {
  for (const char* name : {"OMPI_COMM_WORLD_LOCAL_SIZE", "MPI_LOCALNRANKS"}) {
    const char* text = std::getenv(name);
    if (text == nullptr) continue;
    const int value = std::atoi(text);
    if (value > 0) return value;
  }
  return 1;
}

ops::CpuThreads configure_rank_threads(const parallel::Mesh& mesh) {
  cpu_set_t mine;
  CPU_ZERO(&mine);
  if (sched_getaffinity(0, sizeof mine, &mine) != 0) CPU_ZERO(&mine);
  const MPI_Comm node = mesh.node().get();
  std::vector<cpu_set_t> all(static_cast<size_t>(mesh.node().size()));
  TRIDENT_CHECK_MPI(
      MPI_Allgather(&mine, sizeof mine, MPI_BYTE, all.data(), sizeof mine, MPI_BYTE, node));
  int sharing = 0;
  for (cpu_set_t& other : all) {
    cpu_set_t both;
    CPU_AND(&both, &mine, &other);
    if (CPU_COUNT(&both) > 0) ++sharing;
  }
  return ops::configure_cpu_threads(sharing);
}

}  // namespace trident::launch
