#pragma once
// CUDA device discovery for the op library, its tests and benchmarks.
#include <cstdint>
#include <string>

namespace trident::ops::cuda {

struct DeviceInfo {
  bool available = false;
  std::string reason;  // why no device is usable (driver missing, no GPU, ...)
  std::string name;
  int compute_capability = 0;  // e.g. 90
  int multiprocessors = 0;
  int64_t memory_bytes = 0;
  // Library versions are known even without a GPU: they prove what was linked.
  int runtime_version = 0;   // cudaRuntimeGetVersion, e.g. 13000
  int driver_version = 0;    // 0 when no driver is installed
  int64_t cublaslt_version = 0;
  int64_t cudnn_version = 0;  // cudnnGetVersion, e.g. 91900
};

// Never throws: a machine without a GPU returns available=false with the reason.
DeviceInfo query_device();

}  // namespace trident::ops::cuda
