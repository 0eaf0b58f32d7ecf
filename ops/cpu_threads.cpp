#include "ops/cpu_threads.h"

#include <cblas.h>
#include <omp.h>
#include <sched.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>

#include "ops/cpu/tiled_gemm.h"

namespace trident::ops {

namespace {

CpuThreads& last_choice() {
  static CpuThreads choice{0, "not configured", ""};
  return choice;
}

// Whether omp_set_num_threads was called: from then on the runtime's default no longer holds.
bool& omp_threads_set() {
  static bool set = false;
  return set;
}

void set_omp_threads(int threads) {
  omp_set_num_threads(threads);
  omp_threads_set() = true;
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

// "; " and which products the CPU backend computes in its own kernel, when it does.
std::string tiled_products() {
  const std::string products = cpu::detail::tiled_gemm_description();
  return products.empty() ? "" : "; " + products;
}

// OpenBLAS's threads for a backend of `threads`; says which build it is and what it runs on.
std::string set_blas_threads(int threads) {
  if (openblas_get_parallel() == 2) {  // 0 sequential, 1 pthreads, 2 OpenMP
    openblas_set_num_threads(threads);
    return "OpenBLAS OpenMP build, on the same pool" + tiled_products();
  }
  openblas_set_num_threads(1);
  return "OpenBLAS pthreads build, held to 1 thread beside the OpenMP pool" + tiled_products();
}

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
  const int affinity = affinity_cores();
  in.bound_cores = affinity > 0 ? affinity : in.online_cores;
  in.sharing_ranks = sharing_ranks;
  CpuThreads choice = choose_cpu_threads(in);
  // Where the choice is what the OpenMP runtime picks by itself (OMP_NUM_THREADS, or the cores
  // of the affinity mask), the runtime is left to start when the first kernel needs it: LLVM's
  // (clang builds) starts by sizing a shared-memory file, which fails under a file size limit
  // (ulimit -f) that a command running no kernel would otherwise never meet.
  const int runtime_default = in.omp_num_threads > 0 ? in.omp_num_threads : in.bound_cores;
  if (choice.threads != runtime_default || omp_threads_set()) set_omp_threads(choice.threads);
  choice.blas = set_blas_threads(choice.threads);
  last_choice() = choice;
  return choice;
}

CpuThreads set_cpu_threads(int threads, const std::string& reason) {
  CpuThreads choice{std::max(1, threads), reason, ""};
  set_omp_threads(choice.threads);
  choice.blas = set_blas_threads(choice.threads);
  last_choice() = choice;
  return choice;
}

const CpuThreads& cpu_threads() { return last_choice(); }

}  // namespace trident::ops
