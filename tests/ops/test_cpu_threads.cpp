// The CPU backend's thread count (ops/cpu_threads.h): OMP_NUM_THREADS wins; otherwise the cores a
// rank may run on, divided among the ranks that may run on them too, never below one.
#include <gtest/gtest.h>
#include <omp.h>

#include "ops/cpu_threads.h"

namespace trident::ops {
namespace {

CpuThreadInputs inputs(int omp, int bound, int online, int sharing) {
  return CpuThreadInputs{omp, bound, online, sharing};
}

TEST(CpuThreads, OmpNumThreadsWins) {
  const CpuThreads c = choose_cpu_threads(inputs(3, 16, 16, 4));
  EXPECT_EQ(c.threads, 3);
  EXPECT_EQ(c.reason, "OMP_NUM_THREADS=3");
}

TEST(CpuThreads, OneRankTakesTheCoresItMayRunOn) {
  EXPECT_EQ(choose_cpu_threads(inputs(0, 2, 2, 1)).threads, 2);
  EXPECT_EQ(choose_cpu_threads(inputs(0, 2, 2, 1)).reason, "the node's 2 cores");
  // Bound by mpirun / srun, or limited by a cpuset.
  EXPECT_EQ(choose_cpu_threads(inputs(0, 4, 16, 1)).threads, 4);
  EXPECT_EQ(choose_cpu_threads(inputs(0, 4, 16, 1)).reason, "the 4 cores this rank may run on");
}

TEST(CpuThreads, RanksSharingCoresDivideThem) {
  // 4 unbound ranks on 16 cores: 4 each; 4 on 2 cores (oversubscribed): 1 each, never 0.
  EXPECT_EQ(choose_cpu_threads(inputs(0, 16, 16, 4)).threads, 4);
  const CpuThreads crowded = choose_cpu_threads(inputs(0, 2, 2, 4));
  EXPECT_EQ(crowded.threads, 1);
  EXPECT_EQ(crowded.reason, "the node's 2 cores, shared by 4 ranks");
  // Inputs out of range are clamped rather than trusted.
  EXPECT_EQ(choose_cpu_threads(inputs(0, 0, 0, 0)).threads, 1);
  EXPECT_EQ(choose_cpu_threads(inputs(0, 64, 8, 1)).threads, 8);
}

TEST(CpuThreads, SetAppliesToOpenMpAndIsRemembered) {
  const int before = omp_get_max_threads();
  const CpuThreads set = set_cpu_threads(3, "test");
  EXPECT_EQ(omp_get_max_threads(), 3);
  EXPECT_EQ(cpu_threads().threads, 3);
  EXPECT_EQ(cpu_threads().reason, "test");
  EXPECT_FALSE(set.blas.empty());
  set_cpu_threads(before, "restored");
}

}  // namespace
}  // namespace trident::ops
