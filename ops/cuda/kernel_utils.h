#pragma once
// Helpers shared by the kernel files of ops/cuda: argument checks, launch checks, type loads
// and block reductions. Internal to the op library (included only from .cu files).
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cstdint>

#include "runtime/core/cuda_check.h"
#include "runtime/core/tensor.h"

// A kernel launch reports configuration errors only through the last-error slot.
#define TRIDENT_CHECK_LAUNCH() TRIDENT_CHECK_CUDA(cudaGetLastError())

namespace trident::ops::cuda::detail {

constexpr int kWarp = 32;

// Host-side checks: every tensor an op touches must live on the GPU, be of the expected
// type and hold the expected number of elements.
void expect_cuda(const Tensor& t, const char* what);
void expect_dtype(const Tensor& t, DType dtype, const char* what);
void expect_float_or_bf16(const Tensor& t, const char* what);
void expect_numel(const Tensor& t, int64_t numel, const char* what);

// Logits [T, V] f32 with one i32 target per row; `op` names them in messages ("cross-entropy
// logits"), `shape` their layout ("[T, V]").
struct LogitRows {
  int64_t tokens;
  int64_t vocab;
};
LogitRows logit_rows(const Tensor& logits, const Tensor& targets, const char* op,
                     const char* shape);

// A tensor an op checks, with the name its messages give it.
struct Operand {
  const Tensor& tensor;
  const char* name;
};

// Temporary device memory ordered on a stream (cudaMallocAsync / cudaFreeAsync): it is released
// once the stream has passed the kernels that use it, without synchronising the device.
class StreamScratch {
 public:
  StreamScratch(size_t bytes, cudaStream_t stream);
  ~StreamScratch();
  StreamScratch(const StreamScratch&) = delete;
  StreamScratch& operator=(const StreamScratch&) = delete;

  void* get() const { return memory_; }
  // A non-owning tensor over the scratch memory (valid while this object lives).
  Tensor tensor(const Shape& shape, DType dtype) const {
    return Tensor::wrap(memory_, shape, dtype, Device::CUDA);
  }

 private:
  void* memory_ = nullptr;
  cudaStream_t stream_ = nullptr;
};

inline unsigned blocks_for(int64_t work, int threads) {
  const int64_t blocks = (work + threads - 1) / threads;
  return static_cast<unsigned>(blocks < 1 ? 1 : (blocks > 65535 * 64 ? 65535 * 64 : blocks));
}

// Element loads that accept fp32 and bf16 storage alike; arithmetic is always fp32.
__device__ __forceinline__ float load(const float* p, int64_t i) { return p[i]; }
__device__ __forceinline__ float load(const __nv_bfloat16* p, int64_t i) {
  return __bfloat162float(p[i]);
}
__device__ __forceinline__ void store(float* p, int64_t i, float v) { p[i] = v; }
__device__ __forceinline__ void store(__nv_bfloat16* p, int64_t i, float v) {
  p[i] = __float2bfloat16_rn(v);
}

inline const __nv_bfloat16* bf16_ptr(const Tensor& t) {
  return reinterpret_cast<const __nv_bfloat16*>(t.data<bf16>());
}
inline __nv_bfloat16* bf16_mut(const Tensor& t) {
  return reinterpret_cast<__nv_bfloat16*>(t.data<bf16>());
}

// Sum over the warp (float or double); every lane gets the result.
template <typename T>
__device__ __forceinline__ T warp_sum(T v) {
  for (int offset = kWarp / 2; offset > 0; offset /= 2) v += __shfl_xor_sync(0xffffffffu, v, offset);
  return v;
}
__device__ __forceinline__ float warp_max(float v) {
  for (int offset = kWarp / 2; offset > 0; offset /= 2)
    v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, offset));
  return v;
}

// Sum over the whole block (float or double); every thread gets the result. `scratch` holds one
// value per warp (32 cover 1024 threads). Must be reached by every thread of the block.
template <typename T>
__device__ __forceinline__ T block_sum(T v, T* scratch) {
  const int lane = threadIdx.x % kWarp;
  const int warp = threadIdx.x / kWarp;
  const int warps = (blockDim.x + kWarp - 1) / kWarp;
  v = warp_sum(v);
  __syncthreads();  // scratch may still be read by a previous reduction
  if (lane == 0) scratch[warp] = v;
  __syncthreads();
  return warp_sum(lane < warps ? scratch[lane] : T(0));
}

__device__ __forceinline__ float block_max(float v, float* scratch) {
  const int lane = threadIdx.x % kWarp;
  const int warp = threadIdx.x / kWarp;
  const int warps = (blockDim.x + kWarp - 1) / kWarp;
  v = warp_max(v);
  __syncthreads();
  if (lane == 0) scratch[warp] = v;
  __syncthreads();
  const float m = lane < warps ? scratch[lane] : -INFINITY;
  return warp_max(m);
}

// Online log-sum-exp state: running max m and Σ exp(x − m).
struct LseState {
  float max = -INFINITY;
  float sum = 0.0f;
};

__device__ __forceinline__ LseState lse_push(LseState s, float x) {
  if (x > s.max) {
    s.sum = s.sum * __expf(s.max - x) + 1.0f;
    s.max = x;
  } else {
    s.sum += __expf(x - s.max);
  }
  return s;
}

__device__ __forceinline__ LseState lse_merge(LseState a, LseState b) {
  if (b.max == -INFINITY) return a;
  if (a.max == -INFINITY) return b;
  const float m = fmaxf(a.max, b.max);
  return LseState{m, a.sum * __expf(a.max - m) + b.sum * __expf(b.max - m)};
}

// log Σ exp over the block; every thread gets the result (−inf for an empty set).
__device__ __forceinline__ float block_logsumexp(LseState s, float* scratch) {
  const float m = block_max(s.max, scratch);
  const float part = m == -INFINITY ? 0.0f : s.sum * __expf(s.max - m);
  const float total = block_sum(s.max == -INFINITY ? 0.0f : part, scratch);
  return m == -INFINITY ? -INFINITY : m + logf(total);
}

// Σ e^(x − shift) and Σ e^(x − shift) · x over one row, in double, by the whole block; every
// thread gets both (the softmax's normaliser and its unnormalised mean of the row).
struct ShiftedExpSums {
  double total;
  double weighted;
};
__device__ __forceinline__ ShiftedExpSums block_shifted_exp_sums(const float* row, int64_t n,
                                                                 double shift, double* scratch) {
  double total = 0.0, weighted = 0.0;
  for (int64_t v = threadIdx.x; v < n; v += blockDim.x) {
    const double e = exp(static_cast<double>(row[v]) - shift);
    total += e;
    weighted += e * row[v];
  }
  total = block_sum(total, scratch);
  weighted = block_sum(weighted, scratch);
  return ShiftedExpSums{total, weighted};
}

}  // namespace trident::ops::cuda::detail
