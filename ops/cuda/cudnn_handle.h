#pragma once
// An owned cuDNN handle bound to a stream. Creating one initialises cuDNN on the current
// device, so it needs a GPU; the library version is available without one (query_device).
#include <cuda_runtime_api.h>
#include <cudnn.h>

namespace trident::ops::cuda {

class CudnnHandle {
 public:
  explicit CudnnHandle(cudaStream_t stream = nullptr);
  ~CudnnHandle();
  CudnnHandle(const CudnnHandle&) = delete;
  CudnnHandle& operator=(const CudnnHandle&) = delete;
  CudnnHandle(CudnnHandle&& other) noexcept;
  CudnnHandle& operator=(CudnnHandle&& other) noexcept;

  cudnnHandle_t get() const { return handle_; }
  void set_stream(cudaStream_t stream);

 private:
  cudnnHandle_t handle_ = nullptr;
};

}  // namespace trident::ops::cuda
