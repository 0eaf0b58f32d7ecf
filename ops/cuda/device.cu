#include <cuda_runtime.h>
#include <cudnn.h>

#include "ops/cuda/blas_lt_api.h"
#include "ops/cuda/device.h"

namespace trident::ops::cuda {

DeviceInfo query_device() {
  DeviceInfo info;
  // These calls need no device; failures leave the field at 0.
  if (cudaRuntimeGetVersion(&info.runtime_version) != cudaSuccess) info.runtime_version = 0;
  if (cudaDriverGetVersion(&info.driver_version) != cudaSuccess) info.driver_version = 0;
  if (const BlasLtApi* lt = try_blas_lt()) {  // opens the library: a GPU program will need it
    info.cublaslt_version = static_cast<int64_t>(lt->GetVersion());
  }
  info.cudnn_version = static_cast<int64_t>(cudnnGetVersion());

  int count = 0;
  const cudaError_t rc = cudaGetDeviceCount(&count);
  if (rc != cudaSuccess) {
    info.reason = std::string("cudaGetDeviceCount: ") + cudaGetErrorString(rc);
    cudaGetLastError();  // clear the sticky error so later queries start clean
    return info;
  }
  if (count == 0) {
    info.reason = "no CUDA device present";
    return info;
  }
  cudaDeviceProp prop{};
  if (cudaGetDeviceProperties(&prop, 0) != cudaSuccess) {
    info.reason = "cudaGetDeviceProperties failed";
    cudaGetLastError();
    return info;
  }
  info.available = true;
  info.name = prop.name;
  info.compute_capability = prop.major * 10 + prop.minor;
  info.multiprocessors = prop.multiProcessorCount;
  info.memory_bytes = static_cast<int64_t>(prop.totalGlobalMem);
  return info;
}

}  // namespace trident::ops::cuda
