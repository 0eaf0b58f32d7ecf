// Runs everywhere: the library versions prove what was linked, and without a GPU the device
// query must say why instead of throwing.
#include <cudnn.h>
#include <gtest/gtest.h>

#include <utility>

#include "ops/cuda/blas_api.h"
#include "ops/cuda/blas_lt_api.h"
#include "ops/cuda/cudnn_handle.h"
#include "ops/cuda/device.h"
#include "ops/cuda/library_loader.h"

namespace trident::ops::cuda {
namespace {

// Read before main, before any test could have asked for a matmul.
const bool blas_lt_loaded_at_start_up = blas_lt_loaded();
const bool blas_loaded_at_start_up = detail::library_loaded(blas_library_name());

TEST(CudaDevice, CublasLtOpensOnFirstUseNotAtStartUp) {
  EXPECT_FALSE(blas_lt_loaded_at_start_up)
      << blas_lt_library_name() << " was loaded before any matmul: is it linked again?";
  std::string reason;
  const BlasLtApi* lt = try_blas_lt(&reason);
  ASSERT_NE(lt, nullptr) << reason;
  EXPECT_TRUE(blas_lt_loaded());
  // The library opened is the major version the headers describe.
  EXPECT_EQ(static_cast<int64_t>(lt->GetVersion()) / 10000, CUBLAS_VER_MAJOR);
}

// cuBLAS, for the grouped GEMM of the routed experts, is opened the same way (no GPU needed),
// and has the function.
TEST(CudaDevice, CublasOpensOnFirstUseWithTheGroupedGemm) {
  EXPECT_FALSE(blas_loaded_at_start_up) << blas_library_name() << " was loaded at start-up";
  std::string reason;
  const BlasApi* blas = try_blas(&reason);
  ASSERT_NE(blas, nullptr) << reason;
  EXPECT_NE(blas->GemmGroupedBatchedEx, nullptr);
  EXPECT_TRUE(detail::library_loaded(blas_library_name()));
}

TEST(CudaDevice, QueryNeverThrowsAndExplainsAbsence) {
  const DeviceInfo info = query_device();
  if (info.available) {
    EXPECT_FALSE(info.name.empty());
    EXPECT_GE(info.compute_capability, 75);
    EXPECT_GT(info.multiprocessors, 0);
    EXPECT_GT(info.memory_bytes, 0);
  } else {
    EXPECT_FALSE(info.reason.empty());
  }
}

TEST(CudaDevice, ReportsLinkedLibraryVersions) {
  const DeviceInfo info = query_device();
  EXPECT_EQ(info.cudnn_version / 10000, CUDNN_MAJOR);  // the header and the library agree
  EXPECT_GT(info.cublaslt_version, 0);
  EXPECT_GT(info.runtime_version, 0);
}

TEST(CudaDevice, CudnnHandleLifecycle) {
  if (!query_device().available) GTEST_SKIP() << "cuDNN handles need a GPU";
  cudaStream_t stream = nullptr;
  ASSERT_EQ(cudaStreamCreate(&stream), cudaSuccess);
  {
    CudnnHandle handle;
    EXPECT_NE(handle.get(), nullptr);
    CudnnHandle moved = std::move(handle);
    EXPECT_NE(moved.get(), nullptr);
    EXPECT_EQ(handle.get(), nullptr);  // NOLINT(bugprone-use-after-move): moved-from is empty
    moved.set_stream(stream);
  }
  EXPECT_EQ(cudaStreamDestroy(stream), cudaSuccess);
}

}  // namespace
}  // namespace trident::ops::cuda
