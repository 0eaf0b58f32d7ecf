#include <atomic>
#include <climits>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <mutex>
#include <unordered_map>

#include "ops/cuda/blas_api.h"
#include "ops/cuda/grouped_gemm.h"
#include "ops/cuda/kernel_utils.h"
#include "runtime/core/cuda_check.h"
#include "runtime/core/logging.h"

namespace trident::ops::cuda {
namespace {

bool wanted() {
  static const bool on = [] {
    const char* setting = std::getenv("TRIDENT_CUDA_GROUPED_GEMM");
    return setting == nullptr || std::strcmp(setting, "0") != 0;
  }();
  return on;
}

// The cuBLAS handle of one device. Its stream is set per call, so calls are serialised.
struct DeviceHandle {
  cublasHandle_t handle = nullptr;
  std::mutex mutex;
};

// The current device's handle, created on first use and kept for the life of the process.
DeviceHandle& handle_for_current_device(const BlasApi& api) {
  static std::mutex mutex;
  static std::unordered_map<int, std::unique_ptr<DeviceHandle>> handles;
  int device = 0;
  TRIDENT_CHECK_CUDA(cudaGetDevice(&device));
  std::lock_guard<std::mutex> lock(mutex);
  std::unique_ptr<DeviceHandle>& slot = handles[device];
  if (!slot) {
    auto created = std::make_unique<DeviceHandle>();
    TRIDENT_CHECK_CUBLAS(api.Create_v2(&created->handle));
    slot = std::move(created);
  }
  return *slot;
}

bool fits_int(int64_t value) { return value >= 0 && value <= INT_MAX; }

}  // namespace

bool grouped_gemm(const std::vector<Matmul>& problems, cudaStream_t stream) {
  // Whether cuBLAS declined the dtype once already (f32, bf16).
  static std::atomic<bool> declined[2] = {false, false};
  if (!wanted() || problems.size() < 2 || !fits_int(static_cast<int64_t>(problems.size()))) {
    return false;
  }
  const DType dtype = problems.front().a_type;
  if (dtype != DType::F32 && dtype != DType::BF16) return false;
  std::atomic<bool>& declined_here = declined[dtype == DType::F32 ? 0 : 1];
  if (declined_here.load()) return false;
  for (const Matmul& p : problems) {
    if (p.a_type != dtype || p.b_type != dtype || p.c_type != dtype) return false;
    if (p.m <= 0 || p.n <= 0 || p.k <= 0 || !fits_int(p.m) || !fits_int(p.n) || !fits_int(p.k)) {
      return false;
    }
  }
  const BlasApi* api = try_blas();
  if (api == nullptr) return false;

  // Row-major C = op(A)·op(B) is column-major Cᵀ = op(B)ᵀ·op(A)ᵀ, and a row-major matrix read as
  // column-major is its transpose: cuBLAS gets B first and A second, with the same transposes
  // (as linear.cu's cuBLASLt path does).
  const size_t count = problems.size();
  std::vector<cublasOperation_t> trans_first(count), trans_second(count);
  std::vector<int> rows(count), cols(count), inner(count), ld_first(count), ld_second(count),
      ld_out(count), group_size(count, 1);
  std::vector<float> alpha(count), beta(count);
  std::vector<const void*> pointers(3 * count);
  for (size_t i = 0; i < count; ++i) {
    const Matmul& p = problems[i];
    trans_first[i] = p.trans_b ? CUBLAS_OP_T : CUBLAS_OP_N;
    trans_second[i] = p.trans_a ? CUBLAS_OP_T : CUBLAS_OP_N;
    rows[i] = static_cast<int>(p.n);
    cols[i] = static_cast<int>(p.m);
    inner[i] = static_cast<int>(p.k);
    ld_first[i] = static_cast<int>(p.trans_b ? p.k : p.n);
    ld_second[i] = static_cast<int>(p.trans_a ? p.m : p.k);
    ld_out[i] = static_cast<int>(p.n);
    alpha[i] = p.alpha;
    beta[i] = p.beta;
    pointers[i] = p.b;
    pointers[count + i] = p.a;
    pointers[2 * count + i] = p.c;
  }
  // The pointer arrays are read by the GPU: one stream-ordered block, filled from the host (a
  // pageable source is staged before cudaMemcpyAsync returns, so `pointers` may go after it).
  const size_t bytes = pointers.size() * sizeof(void*);
  const detail::StreamScratch device_pointers(bytes, stream);
  TRIDENT_CHECK_CUDA(cudaMemcpyAsync(device_pointers.get(), pointers.data(), bytes,
                                     cudaMemcpyHostToDevice, stream));
  const auto* const* first = static_cast<const void* const*>(device_pointers.get());
  const void* const* second = first + count;
  void* const* out = const_cast<void* const*>(first + 2 * count);

  const cudaDataType_t type = dtype == DType::F32 ? CUDA_R_32F : CUDA_R_16BF;
  DeviceHandle& handle = handle_for_current_device(*api);
  std::lock_guard<std::mutex> lock(handle.mutex);
  TRIDENT_CHECK_CUBLAS(api->SetStream_v2(handle.handle, stream));
  const cublasStatus_t status = api->GemmGroupedBatchedEx(
      handle.handle, trans_first.data(), trans_second.data(), rows.data(), cols.data(),
      inner.data(), alpha.data(), first, type, ld_first.data(), second, type, ld_second.data(),
      beta.data(), out, type, ld_out.data(), static_cast<int>(count), group_size.data(),
      CUBLAS_COMPUTE_32F);
  if (status == CUBLAS_STATUS_NOT_SUPPORTED || status == CUBLAS_STATUS_INVALID_VALUE) {
    if (!declined_here.exchange(true)) {
      TLOG_WARN("cuBLAS declined the grouped GEMM for ", dtype_name(dtype), " (status ",
                static_cast<int>(status), "): the routed experts run one matmul each");
    }
    return false;
  }
  TRIDENT_CHECK_CUBLAS(status);
  return true;
}

}  // namespace trident::ops::cuda
