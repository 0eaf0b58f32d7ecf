#pragma once
// The CPU threads of a rank (ops/cpu_threads.h): how many of the job's ranks may run on this
// rank's cores, from the launcher's environment before MPI starts and exactly, from every
// rank's affinity mask, once the mesh exists.
#include "ops/cpu_threads.h"
#include "parallel/mesh.h"

namespace trident::launch {

// Before MPI: the ranks mpirun (OMPI_COMM_WORLD_LOCAL_SIZE) or MPICH (MPI_LOCALNRANKS) started
// on this node; 1 otherwise (srun binds its tasks to their own cores by default). Conservative:
// ranks bound to their own cores share none, which only the masks tell.
int local_ranks_from_environment();

// Collective over the mesh's node: the ranks of this node whose affinity masks overlap this
// rank's, itself included; then configures the CPU threads for that sharing.
ops::CpuThreads configure_rank_threads(const parallel::Mesh& mesh);

}  // namespace trident::launch
