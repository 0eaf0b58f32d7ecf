#include "ops/cpu_threads.h"

#include <cblas.h>
#include <omp.h>
#include <sched.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>

namespace trident::ops {

namespace {

CpuThreads& last_choice() {
  static CpuThreads choice{0, "not configured", ""};
  return choice;
}

int positive_env(const char* name) {
  const char* text = std::getenv(name);
  if (text == nullptr) return 0;
  char* end = nullptr;
  const long value = std::strtol(text, &end, 10);
  return end != text && value > 0 && value < 1 << 16 ? static_cast<int>(value) : 0;
}

int affinity_cores() {
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof set, &set) != 0) return 0;
  return CPU_COUNT(&set);
}

// openblas_get_parallel(): 0 sequential, 1 pthreads, 2 OpenMP.
bool blas_shares_openmp_pool() { return openblas_get_parallel() == 2; }

}  // namespace

CpuThreads choose_cpu_threads(const CpuThreadInputs& in) {
  const int online = std::max(1, in.online_cores);
  const int bound = std::clamp(in.bound_cores, 1, online);
  const int sharing = std::max(1, in.sharing_ranks);
  CpuThreads choice;
  if (in.omp_num_threads > 0) {
    choice.threads = in.omp_num_threads;
    choice.reason = "OMP_NUM_THREADS=" + std::to_string(in.omp_num_threads);
    return choice;
  }
  choice.threads = std::max(1, bound / sharing);
  const std::string cores = std::to_string(bound) + (bound == 1 ? " core" : " cores");
  choice.reason =
      bound == online ? "the node's " + cores : "the " + cores + " this rank may run on";
  if (sharing > 1) choice.reason += ", shared by " + std::to_string(sharing) + " ranks";
  return choice;
}

CpuThreads configure_cpu_threads(int sharing_ranks) {
  CpuThreadInputs in;
  in.omp_num_threads = positive_env("OMP_NUM_THREADS");
  in.online_cores = static_cast<int>(std::max(1L, sysconf(_SC_NPROCESSORS_ONLN)));
  in.bound_cores = affinity_cores() > 0 ? affinity_cores() : in.online_cores;
  in.sharing_ranks = sharing_ranks;
  const CpuThreads choice = choose_cpu_threads(in);
  return set_cpu_threads(choice.threads, choice.reason);
}

CpuThreads set_cpu_threads(int threads, const std::string& reason) {
  CpuThreads choice{std::max(1, threads), reason, ""};
  omp_set_num_threads(choice.threads);
  if (blas_shares_openmp_pool()) {
    openblas_set_num_threads(choice.threads);
    choice.blas = "OpenBLAS OpenMP build, on the same pool";
  } else {
    openblas_set_num_threads(1);
    choice.blas = "OpenBLAS pthreads build, held to 1 thread beside the OpenMP pool";
  }
  last_choice() = choice;
  return choice;
}

const CpuThreads& cpu_threads() { return last_choice(); }

}  // namespace trident::ops
