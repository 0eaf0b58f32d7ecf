#include "parallel/gpu_binding.h"

#include <cstdlib>
#include <cstring>

#include "parallel/comm/rank_agreement.h"
#include "runtime/core/error.h"

#ifdef TRIDENT_HAVE_NCCL
#include <cuda_runtime_api.h>
#endif

namespace trident::parallel {

namespace {

std::string visible_devices_setting(const GpuSurroundings& at) {
  return at.visible_devices_set ? "CUDA_VISIBLE_DEVICES=" + at.visible_devices
                                : std::string("CUDA_VISIBLE_DEVICES is unset");
}

}  // namespace

GpuChoice choose_local_gpu(const GpuSurroundings& at) {
  GpuChoice choice;
  if (at.visible <= 0) {
    choice.problem = "no usable CUDA device on " + at.host + " (" +
                     (at.visible < 0 ? at.no_device_reason : "the runtime lists none") + "; " +
                     visible_devices_setting(at) + ")";
    return choice;
  }
  if (at.visible == 1 && at.visible_devices_set) {
    choice.device = 0;  // the launcher gave this task its own GPU
    return choice;
  }
  if (at.local_rank >= at.visible) {
    choice.problem = std::to_string(at.local_size) + " ranks on " + at.host + " but " +
                     std::to_string(at.visible) + " visible GPU" + (at.visible == 1 ? "" : "s") +
                     " (" + visible_devices_setting(at) +
                     "); run one rank per GPU, or let the launcher bind one GPU to each task "
                     "(srun --gpus-per-task=1)";
    return choice;
  }
  choice.device = at.local_rank;
  return choice;
}

std::string shared_gpu_problem(const std::vector<std::string>& bus_ids, int local_rank,
                               const std::string& host) {
  const std::string& mine = bus_ids[static_cast<size_t>(local_rank)];
  if (mine.empty()) return "";
  std::string sharers;
  for (size_t r = 0; r < bus_ids.size(); ++r) {
    if (static_cast<int>(r) != local_rank && bus_ids[r] == mine) {
      sharers += (sharers.empty() ? "" : ", ") + std::to_string(r);
    }
  }
  if (sharers.empty()) return "";
  return "local rank " + std::to_string(local_rank) + " on " + host + " bound GPU " + mine +
         ", as local rank(s) " + sharers +
         " did: one GPU per rank (check CUDA_VISIBLE_DEVICES and the launcher's GPU binding)";
}

#ifdef TRIDENT_HAVE_NCCL
int bind_local_gpu(const Mesh& mesh) {
  GpuSurroundings at;
  at.local_rank = mesh.node().rank();
  at.local_size = mesh.node().size();
  char host[MPI_MAX_PROCESSOR_NAME] = {};
  int length = 0;
  MPI_Get_processor_name(host, &length);
  at.host.assign(host, static_cast<size_t>(length));
  if (const char* value = std::getenv("CUDA_VISIBLE_DEVICES")) {
    at.visible_devices = value;
    at.visible_devices_set = true;
  }
  const cudaError_t counted = cudaGetDeviceCount(&at.visible);
  if (counted != cudaSuccess) {
    at.visible = -1;
    at.no_device_reason =
        std::string(cudaGetErrorName(counted)) + ": " + cudaGetErrorString(counted);
    cudaGetLastError();  // the failed query is not an error of the next CUDA call
  }
  GpuChoice choice = choose_local_gpu(at);
  // The PCI bus id of the bound device, fixed width for the all-gather (empty: none bound).
  constexpr int kBusIdBytes = 32;
  char bus_id[kBusIdBytes] = {};
  if (choice.problem.empty()) {
    const cudaError_t set = cudaSetDevice(choice.device);
    if (set != cudaSuccess) {
      choice.problem = "cudaSetDevice(" + std::to_string(choice.device) + ") on " + at.host +
                       " failed: " + cudaGetErrorString(set);
    } else if (cudaDeviceGetPCIBusId(bus_id, kBusIdBytes, choice.device) != cudaSuccess) {
      bus_id[0] = '\0';    // unknown: not compared
      cudaGetLastError();  // nor reported by the next launch check
    }
  }
  std::vector<char> all(static_cast<size_t>(kBusIdBytes) * static_cast<size_t>(at.local_size));
  TRIDENT_CHECK_MPI(MPI_Allgather(bus_id, kBusIdBytes, MPI_CHAR, all.data(), kBusIdBytes, MPI_CHAR,
                                  mesh.node().get()));
  std::vector<std::string> bus_ids;
  for (int r = 0; r < at.local_size; ++r) {
    const char* id = all.data() + static_cast<size_t>(r) * kBusIdBytes;
    bus_ids.emplace_back(id, strnlen(id, kBusIdBytes));
  }
  if (choice.problem.empty()) choice.problem = shared_gpu_problem(bus_ids, at.local_rank, at.host);
  comm::require_on_every_rank(mesh.world(), choice.problem, "binding one GPU per rank");
  return choice.device;
}
#endif

}  // namespace trident::parallel
