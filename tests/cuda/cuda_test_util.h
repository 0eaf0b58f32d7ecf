#pragma once
// Shared pieces of the CUDA-vs-CPU op tests: skipping without a GPU, fresh random inputs,
// poisoned outputs and the norm-scaled comparison, alone or of one op run on both sides.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

#include "ops/cuda/device.h"
#include "runtime/core/rng.h"
#include "runtime/core/tensor.h"

// Declared here so the alias below does not depend on which op header came first.
namespace trident::ops::cpu {}

namespace trident::cuda_test {

// Every test compares an ops::cuda kernel with its ops::cpu oracle.
namespace cpu = ops::cpu;
namespace cuda = ops::cuda;

// Every test starts with this: without a GPU there is nothing to compare.
#define SKIP_WITHOUT_GPU()                                                              \
  do {                                                                                  \
    const ::trident::ops::cuda::DeviceInfo trident_info_ = ::trident::ops::cuda::query_device(); \
    if (!trident_info_.available)                                                       \
      GTEST_SKIP() << "no usable CUDA device (" << trident_info_.reason                 \
                   << "): the CUDA ops are only compared with the CPU ops on a GPU";    \
  } while (0)

constexpr double kFp32Tolerance = 1e-4;
constexpr double kMatmulTolerance = 1e-3;  // GEMM and attention: different summation orders
constexpr double kBf16Tolerance = 1e-2;

// Normal(0, scale) + shift on the host; each call site passes its own seed so inputs differ.
inline Tensor random_tensor(const Shape& shape, uint64_t seed, float scale = 1.0f,
                            float shift = 0.0f) {
  const CounterRng rng(seed, 0x0c0da);
  Tensor t = Tensor::empty(shape);
  float* data = t.data<float>();
  for (int64_t i = 0; i < t.numel(); ++i)
    data[i] = shift + scale * rng.normal(static_cast<uint64_t>(i));
  return t;
}

inline Tensor random_ids(int64_t count, int64_t bound, uint64_t seed) {
  const CounterRng rng(seed, 0x1d5);
  std::vector<int32_t> ids(static_cast<size_t>(count));
  for (int64_t i = 0; i < count; ++i)
    ids[static_cast<size_t>(i)] = static_cast<int32_t>(rng.bits(static_cast<uint64_t>(i)) %
                                                       static_cast<uint32_t>(bound));
  return Tensor::from_ints(ids, {count});
}

inline Tensor gpu(const Tensor& host) { return host.to(Device::CUDA); }

// A device tensor full of NaN (or a nonsense integer), so an output the op forgets to write
// cannot pass the comparison.
inline Tensor poisoned(const Shape& shape, DType dtype = DType::F32) {
  if (dtype == DType::I32) {
    std::vector<int32_t> values(static_cast<size_t>(shape_numel(shape)), -12345);
    return Tensor::from_ints(values, shape).to(Device::CUDA);
  }
  return Tensor::full(shape, std::numeric_limits<float>::quiet_NaN(), dtype).to(Device::CUDA);
}

// ||gpu − cpu|| / ||cpu||, NaN-safe: a NaN anywhere fails every EXPECT_LE.
inline double gpu_error(const Tensor& on_gpu, const Tensor& on_cpu) {
  return relative_error(on_gpu.to(Device::CPU), on_cpu);
}

// The GPU's error on an op with one output, run by `on_cpu` on a host tensor and by `on_gpu` on a
// device one. An op that adds into its output (`accumulate`) starts both sides from `start`; one
// that overwrites it starts the GPU side poisoned, so an element the kernel forgets to write
// fails the comparison.
template <typename CpuOp, typename GpuOp>
double output_error(const Tensor& start, bool accumulate, CpuOp&& on_cpu, GpuOp&& on_gpu) {
  Tensor expected = start.clone();
  on_cpu(expected);
  Tensor got = accumulate ? gpu(start) : poisoned(start.shape());
  on_gpu(got);
  return gpu_error(got, expected);
}

// The same for an op that overwrites its output of `shape`.
template <typename CpuOp, typename GpuOp>
double written_error(const Shape& shape, CpuOp&& on_cpu, GpuOp&& on_gpu) {
  return output_error(Tensor::empty(shape), /*accumulate=*/false, on_cpu, on_gpu);
}

inline std::vector<int32_t> ints(const Tensor& t) {
  const Tensor host = t.on(Device::CPU);
  const int32_t* data = host.data<int32_t>();
  return std::vector<int32_t>(data, data + host.numel());
}

}  // namespace trident::cuda_test
