#pragma once
// One GPU per rank. A rank takes the GPU whose index among the visible ones
// (CUDA_VISIBLE_DEVICES) is its place among the ranks of its host (the mesh's node group), so
// mpirun and Slurm need no per-rank wrapper; a launcher that already hands each rank its own
// visible GPU (Slurm's --gpus-per-task with GPU binding) works as well.
#include <string>
#include <vector>

#include "parallel/mesh.h"

namespace trident::parallel {

// What one rank would bind to.
struct GpuChoice {
  int device = -1;      // index among the visible devices; -1 when `problem` says why none
  std::string problem;  // empty when `device` is usable
};

// What a rank knows when it chooses.
struct GpuSurroundings {
  int local_rank = 0;  // its place among the ranks of its host
  int local_size = 1;  // ranks on its host
  int visible = 0;     // devices the CUDA runtime lists; negative when it failed to say
  std::string host;
  std::string no_device_reason;  // the runtime's error, when `visible` is negative
  std::string visible_devices;   // CUDA_VISIBLE_DEVICES, or empty when unset
  bool visible_devices_set = false;
};

// Pure. Where a rank sees one device and CUDA_VISIBLE_DEVICES is set, the launcher bound one GPU
// to the task: device 0. Otherwise the rank takes device `local_rank`, and more ranks on a host
// than devices they see is a problem (two ranks of one NCCL communicator may not share a GPU).
GpuChoice choose_local_gpu(const GpuSurroundings& at);

// Pure. Given the PCI bus id of the device each local rank of `host` bound (empty where a rank
// bound none), what is wrong for local rank `local_rank`: empty unless another rank of the host
// bound the same GPU (for instance CUDA_VISIBLE_DEVICES=0 given to every rank), which NCCL would
// refuse later with a message that does not say why.
std::string shared_gpu_problem(const std::vector<std::string>& bus_ids, int local_rank,
                               const std::string& host);

#ifdef TRIDENT_HAVE_NCCL
// Collective over the world: every rank makes its choice current (cudaSetDevice), the ranks of
// each host compare the PCI bus ids they bound, and it returns the device index; if any rank
// cannot bind or shares its GPU, every rank throws a user error that names the ranks and the
// reason (parallel/comm/rank_agreement.h).
int bind_local_gpu(const Mesh& mesh);
#endif

}  // namespace trident::parallel
