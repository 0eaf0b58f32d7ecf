#pragma once
// The cuBLASLt handle, per-stream workspaces and the cache of chosen matmul algorithms of one
// device. Operations on one stream are ordered, so a workspace per stream lets streams run
// matmuls concurrently without sharing scratch memory.
#include <cublasLt.h>
#include <cuda_runtime_api.h>

#include <cstddef>
#include <mutex>
#include <string>
#include <unordered_map>

namespace trident::ops::cuda {

class BlasLtContext {
 public:
  static constexpr size_t kWorkspaceBytes = size_t{32} << 20;  // what Hopper kernels ask for

  BlasLtContext();
  ~BlasLtContext();
  BlasLtContext(const BlasLtContext&) = delete;
  BlasLtContext& operator=(const BlasLtContext&) = delete;

  // The context of the current CUDA device, created on first use.
  static BlasLtContext& for_current_device();

  cublasLtHandle_t handle() const { return handle_; }
  void* workspace(cudaStream_t stream);

  // Algorithms are chosen once per problem signature (shapes, types, transposes, alignment).
  bool find_algo(const std::string& key, cublasLtMatmulAlgo_t& algo);
  void remember_algo(const std::string& key, const cublasLtMatmulAlgo_t& algo);

 private:
  cublasLtHandle_t handle_ = nullptr;
  std::mutex mutex_;
  std::unordered_map<cudaStream_t, void*> workspaces_;
  std::unordered_map<std::string, cublasLtMatmulAlgo_t> algos_;
};

}  // namespace trident::ops::cuda
