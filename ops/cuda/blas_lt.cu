#include <map>
#include <memory>

#include "ops/cuda/blas_lt.h"
#include "ops/cuda/blas_lt_api.h"
#include "runtime/core/cuda_check.h"

namespace trident::ops::cuda {

BlasLtContext::BlasLtContext() { TRIDENT_CHECK_CUBLAS(blas_lt().Create(&handle_)); }

BlasLtContext::~BlasLtContext() {
  // Errors cannot be reported from a destructor (and at process exit the runtime may be gone).
  for (auto& entry : workspaces_) cudaFree(entry.second);
  if (handle_ != nullptr) blas_lt().Destroy(handle_);
}

BlasLtContext& BlasLtContext::for_current_device() {
  static std::mutex mutex;
  static std::map<int, std::unique_ptr<BlasLtContext>> contexts;
  int device = 0;
  TRIDENT_CHECK_CUDA(cudaGetDevice(&device));
  const std::lock_guard<std::mutex> lock(mutex);
  std::unique_ptr<BlasLtContext>& context = contexts[device];
  if (!context) context = std::make_unique<BlasLtContext>();
  return *context;
}

void* BlasLtContext::workspace(cudaStream_t stream) {
  const std::lock_guard<std::mutex> lock(mutex_);
  void*& memory = workspaces_[stream];
  if (memory == nullptr) TRIDENT_CHECK_CUDA(cudaMalloc(&memory, kWorkspaceBytes));
  return memory;
}

bool BlasLtContext::find_algo(const std::string& key, cublasLtMatmulAlgo_t& algo) {
  const std::lock_guard<std::mutex> lock(mutex_);
  const auto found = algos_.find(key);
  if (found == algos_.end()) return false;
  algo = found->second;
  return true;
}

void BlasLtContext::remember_algo(const std::string& key, const cublasLtMatmulAlgo_t& algo) {
  const std::lock_guard<std::mutex> lock(mutex_);
  algos_[key] = algo;
}

}  // namespace trident::ops::cuda
