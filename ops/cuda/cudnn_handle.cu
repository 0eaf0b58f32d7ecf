#include <utility>

#include "ops/cuda/cudnn_handle.h"
#include "runtime/core/cuda_check.h"

namespace trident::ops::cuda {

CudnnHandle::CudnnHandle(cudaStream_t stream) {
  TRIDENT_CHECK_CUDNN(cudnnCreate(&handle_));
  if (stream != nullptr) set_stream(stream);
}

CudnnHandle::~CudnnHandle() {
  if (handle_ != nullptr) cudnnDestroy(handle_);  // a destructor cannot report failure
}

CudnnHandle::CudnnHandle(CudnnHandle&& other) noexcept
    : handle_(std::exchange(other.handle_, nullptr)) {}

CudnnHandle& CudnnHandle::operator=(CudnnHandle&& other) noexcept {
  if (this != &other) {
    if (handle_ != nullptr) cudnnDestroy(handle_);
    handle_ = std::exchange(other.handle_, nullptr);
  }
  return *this;
}

void CudnnHandle::set_stream(cudaStream_t stream) {
  TRIDENT_CHECK_CUDNN(cudnnSetStream(handle_, stream));
}

}  // namespace trident::ops::cuda
