// Which GPU a rank takes (parallel/gpu_binding.h): its place on its host, or the one device its
// launcher bound to it; and what it says when there is none to take.
#include <gtest/gtest.h>

#include "parallel/gpu_binding.h"

namespace trident::parallel {
namespace {

GpuSurroundings on_host(int local_rank, int local_size, int visible) {
  GpuSurroundings at;
  at.local_rank = local_rank;
  at.local_size = local_size;
  at.visible = visible;
  at.host = "node07";
  return at;
}

TEST(GpuBinding, LocalRankPicksTheDevice) {
  for (int rank = 0; rank < 8; ++rank) {
    const GpuChoice choice = choose_local_gpu(on_host(rank, 8, 8));
    EXPECT_EQ(choice.device, rank);
    EXPECT_TRUE(choice.problem.empty()) << choice.problem;
  }
}

TEST(GpuBinding, OneDeviceBoundByTheLauncherIsDeviceZero) {
  GpuSurroundings at = on_host(3, 4, 1);
  at.visible_devices = "GPU-5c1e";
  at.visible_devices_set = true;
  const GpuChoice choice = choose_local_gpu(at);
  EXPECT_EQ(choice.device, 0);
  EXPECT_TRUE(choice.problem.empty()) << choice.problem;
}

TEST(GpuBinding, MoreRanksThanDevicesIsRefused) {
  const GpuChoice choice = choose_local_gpu(on_host(2, 4, 2));
  EXPECT_EQ(choice.device, -1);
  EXPECT_NE(choice.problem.find("4 ranks on node07 but 2 visible GPUs"), std::string::npos)
      << choice.problem;
  EXPECT_NE(choice.problem.find("CUDA_VISIBLE_DEVICES is unset"), std::string::npos);
  // The ranks that do have a device of their own are not the ones at fault.
  EXPECT_EQ(choose_local_gpu(on_host(1, 4, 2)).device, 1);
  // Two ranks on a host with one GPU and no binding would share it.
  EXPECT_EQ(choose_local_gpu(on_host(1, 2, 1)).device, -1);
}

TEST(GpuBinding, NoDeviceSaysWhatTheRuntimeSaid) {
  GpuSurroundings at = on_host(0, 1, -1);
  at.no_device_reason = "cudaErrorNoDevice: no CUDA-capable device is detected";
  const GpuChoice choice = choose_local_gpu(at);
  EXPECT_EQ(choice.device, -1);
  EXPECT_NE(choice.problem.find("no usable CUDA device on node07"), std::string::npos);
  EXPECT_NE(choice.problem.find("no CUDA-capable device is detected"), std::string::npos);
  EXPECT_NE(choose_local_gpu(on_host(0, 1, 0)).problem.find("the runtime lists none"),
            std::string::npos);
}

TEST(GpuBinding, TwoRanksOnOneGpuAreNamed) {
  const std::vector<std::string> bus_ids = {"0000:1b:00.0", "0000:1b:00.0", "0000:2c:00.0", ""};
  const std::string problem = shared_gpu_problem(bus_ids, 1, "node07");
  EXPECT_NE(problem.find("local rank 1 on node07 bound GPU 0000:1b:00.0, as local rank(s) 0 did"),
            std::string::npos)
      << problem;
  EXPECT_EQ(shared_gpu_problem(bus_ids, 2, "node07"), "");
  EXPECT_EQ(shared_gpu_problem(bus_ids, 3, "node07"), "");  // bound none: said elsewhere
}

}  // namespace
}  // namespace trident::parallel
