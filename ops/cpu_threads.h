#pragma once
// How many threads the CPU backend computes with. The kernels run on OpenMP's pool; OpenBLAS
// runs its GEMMs on the same pool when it is its OpenMP build (what Trident links under GCC,
// cmake/TridentDependencies.cmake), and on a pool of its own otherwise, which is then held to
// one thread so the two never compete for the cores (threads of each spin while the other
// works: on 2 cores a `small` step took twice as long with 2 threads as with 1).
//
// The count follows where the rank may run: OMP_NUM_THREADS when set; otherwise the cores of its
// affinity mask (what mpirun --bind-to, srun --cpu-bind or a container's cpuset allow it)
// divided among the ranks of the job that may run on those cores too (launch/rank_threads.h
// counts them). So by default no core runs more than one busy thread.
#include <string>

namespace trident::ops {

struct CpuThreadInputs {
  int omp_num_threads = 0;  // OMP_NUM_THREADS when set to a positive count, else 0
  int bound_cores = 1;      // CPUs in this process's affinity mask
  int online_cores = 1;     // CPUs online on the node
  int sharing_ranks = 1;    // ranks of the job whose masks overlap this one's, itself included
};

struct CpuThreads {
  int threads = 1;
  std::string reason;  // "OMP_NUM_THREADS=3", "the 4 cores this rank is bound to", ...
  std::string blas;    // which OpenBLAS build, and the threads it runs its GEMMs on
};

// The choice for these inputs (pure: no environment, no side effects).
CpuThreads choose_cpu_threads(const CpuThreadInputs& inputs);

// Reads OMP_NUM_THREADS, the affinity mask and the online CPUs, sets OpenMP's and OpenBLAS's
// thread counts, and returns (and remembers) the choice. `sharing_ranks`: ranks of the job that
// may run on this rank's cores, itself included. Call before the first op (again when the
// ranks sharing the cores become known).
CpuThreads configure_cpu_threads(int sharing_ranks);

// Runs the CPU backend on `threads` threads (OpenMP's pool; OpenBLAS as above); `reason` says
// why, for the log. What configure_cpu_threads applies, and `trident bench step --threads`.
CpuThreads set_cpu_threads(int threads, const std::string& reason);

// The last configure_cpu_threads / set_cpu_threads choice (threads 0 before any).
const CpuThreads& cpu_threads();

}  // namespace trident::ops
