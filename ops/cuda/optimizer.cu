#include <cmath>

#include "ops/cuda/kernel_utils.h"
#include "ops/cuda/optimizer.h"

namespace trident::ops::cuda {

namespace {

using detail::blocks_for;

constexpr int kThreads = 256;
constexpr int64_t kChunk = int64_t{1} << 16;  // elements per partial sum

// The CPU kernel's arithmetic, element for element (ops/cpu/optimizer.cpp).
// `nonfinite` (optional) counts the updated weights that are NaN or infinite.
template <typename Moment>
__global__ void adamw_kernel(AdamWScalars s, float* param, const float* grad, Moment* exp_avg,
                             Moment* exp_avg_sq, int64_t n, unsigned long long* nonfinite) {
  int bad = 0;
  for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < n;
       i += int64_t{gridDim.x} * blockDim.x) {
    const float g = grad[i] * s.grad_scale;
    float p = param[i] * s.keep;
    const float m = s.beta1 * detail::load(exp_avg, i) + (1.0f - s.beta1) * g;
    const float v = s.beta2 * detail::load(exp_avg_sq, i) + (1.0f - s.beta2) * g * g;
    detail::store(exp_avg, i, m);
    detail::store(exp_avg_sq, i, v);
    p -= s.step_size * m / (sqrtf(v) / s.bias2_sqrt + s.eps);
    param[i] = p;
    bad += isfinite(p) ? 0 : 1;
  }
  // Atomics only where something is wrong, which is rare: a finite update costs none.
  if (bad != 0 && nonfinite != nullptr) atomicAdd(nonfinite, static_cast<unsigned long long>(bad));
}

// Sum over the block in double; thread 0 gets the result. `scratch` holds one double per warp.
__device__ double block_sum_double(double v, double* scratch) {
  const int lane = threadIdx.x % detail::kWarp;
  const int warp = threadIdx.x / detail::kWarp;
  for (int offset = detail::kWarp / 2; offset > 0; offset /= 2)
    v += __shfl_xor_sync(0xffffffffu, v, offset);
  if (lane == 0) scratch[warp] = v;
  __syncthreads();
  double total = 0.0;
  if (threadIdx.x == 0) {
    for (int w = 0; w < (blockDim.x + detail::kWarp - 1) / detail::kWarp; ++w) total += scratch[w];
  }
  return total;
}

// Block b sums the squares of chunk b of `values` into partials[b].
__global__ void chunk_squares_kernel(const float* values, int64_t n, double* partials) {
  __shared__ double scratch[kThreads / detail::kWarp];
  const int64_t begin = blockIdx.x * kChunk;
  const int64_t end = begin + kChunk < n ? begin + kChunk : n;
  double sum = 0.0;
  for (int64_t i = begin + threadIdx.x; i < end; i += blockDim.x) {
    const double x = values[i];
    sum += x * x;
  }
  const double total = block_sum_double(sum, scratch);
  if (threadIdx.x == 0) partials[blockIdx.x] = total;
}

// One block adds `count` partial sums (strided per thread, then a fixed tree) into *out.
__global__ void add_partials_kernel(const double* partials, int64_t count, double* out) {
  __shared__ double scratch[kThreads / detail::kWarp];
  double sum = 0.0;
  for (int64_t i = threadIdx.x; i < count; i += blockDim.x) sum += partials[i];
  const double total = block_sum_double(sum, scratch);
  if (threadIdx.x == 0) *out = total;
}

__global__ void nonfinite_kernel(const float* values, int64_t n, unsigned long long* count) {
  int local = 0;
  for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < n;
       i += int64_t{gridDim.x} * blockDim.x)
    local += isfinite(values[i]) ? 0 : 1;
  // Atomics only where something is wrong, which is rare: a finite tensor costs none.
  if (local != 0) atomicAdd(count, static_cast<unsigned long long>(local));
}

const float* f32_piece(const Tensor& t, const char* op) {
  detail::expect_dtype(t, DType::F32, op);
  return t.data<float>();
}

}  // namespace

void adamw_update(const AdamWSettings& settings, const AdamWStep& step, Tensor& param,
                  const Tensor& grad, Tensor& exp_avg, Tensor& exp_avg_sq, Tensor* nonfinite,
                  cudaStream_t stream) {
  TRIDENT_CHECK(step.step >= 1, "AdamW step counts from 1, got ", step.step);
  const int64_t n = param.numel();
  detail::expect_dtype(param, DType::F32, "adamw_update param");
  detail::expect_dtype(grad, DType::F32, "adamw_update grad");
  detail::expect_numel(grad, n, "adamw_update grad");
  detail::expect_float_or_bf16(exp_avg, "adamw_update exp_avg");
  detail::expect_dtype(exp_avg_sq, exp_avg.dtype(), "adamw_update exp_avg_sq");
  detail::expect_numel(exp_avg, n, "adamw_update exp_avg");
  detail::expect_numel(exp_avg_sq, n, "adamw_update exp_avg_sq");
  unsigned long long* bad = nullptr;
  if (nonfinite != nullptr) {
    detail::expect_dtype(*nonfinite, DType::I64, "adamw_update non-finite count");
    detail::expect_numel(*nonfinite, 1, "adamw_update non-finite count");
    // The count is never negative: its i64 bits are those of the unsigned atomic's operand.
    bad = reinterpret_cast<unsigned long long*>(nonfinite->data<int64_t>());
  }
  if (n == 0) return;
  const AdamWScalars s = adamw_scalars(settings, step);
  const unsigned blocks = blocks_for(n, kThreads);
  if (exp_avg.dtype() == DType::BF16) {
    adamw_kernel<<<blocks, kThreads, 0, stream>>>(s, param.data<float>(), grad.data<float>(),
                                                  detail::bf16_mut(exp_avg),
                                                  detail::bf16_mut(exp_avg_sq), n, bad);
  } else {
    adamw_kernel<<<blocks, kThreads, 0, stream>>>(s, param.data<float>(), grad.data<float>(),
                                                  exp_avg.data<float>(), exp_avg_sq.data<float>(),
                                                  n, bad);
  }
  TRIDENT_CHECK_LAUNCH();
}

double sum_of_squares(const std::vector<Tensor>& pieces, cudaStream_t stream) {
  int64_t chunks = 0;
  for (const Tensor& piece : pieces) {
    if (piece.defined()) chunks += (piece.numel() + kChunk - 1) / kChunk;
  }
  if (chunks == 0) return 0.0;
  detail::StreamScratch partials(static_cast<size_t>(chunks + 1) * sizeof(double), stream);
  auto* sums = static_cast<double*>(partials.get());
  int64_t next = 0;
  for (const Tensor& piece : pieces) {
    if (!piece.defined() || piece.numel() == 0) continue;
    const int64_t piece_chunks = (piece.numel() + kChunk - 1) / kChunk;
    chunk_squares_kernel<<<static_cast<unsigned>(piece_chunks), kThreads, 0, stream>>>(
        f32_piece(piece, "sum_of_squares piece"), piece.numel(), sums + next);
    TRIDENT_CHECK_LAUNCH();
    next += piece_chunks;
  }
  add_partials_kernel<<<1, kThreads, 0, stream>>>(sums, chunks, sums + chunks);
  TRIDENT_CHECK_LAUNCH();
  double host = 0.0;
  TRIDENT_CHECK_CUDA(
      cudaMemcpyAsync(&host, sums + chunks, sizeof(double), cudaMemcpyDeviceToHost, stream));
  TRIDENT_CHECK_CUDA(cudaStreamSynchronize(stream));
  return host;
}

std::vector<int64_t> count_nonfinite(const std::vector<Tensor>& pieces, cudaStream_t stream) {
  std::vector<int64_t> counts(pieces.size(), 0);
  if (pieces.empty()) return counts;
  const size_t bytes = pieces.size() * sizeof(unsigned long long);
  detail::StreamScratch scratch(bytes, stream);
  auto* device_counts = static_cast<unsigned long long*>(scratch.get());
  TRIDENT_CHECK_CUDA(cudaMemsetAsync(device_counts, 0, bytes, stream));
  for (size_t i = 0; i < pieces.size(); ++i) {
    const Tensor& piece = pieces[i];
    if (!piece.defined() || piece.numel() == 0) continue;
    nonfinite_kernel<<<blocks_for(piece.numel(), kThreads), kThreads, 0, stream>>>(
        f32_piece(piece, "count_nonfinite piece"), piece.numel(), device_counts + i);
    TRIDENT_CHECK_LAUNCH();
  }
  std::vector<unsigned long long> host(pieces.size(), 0);
  TRIDENT_CHECK_CUDA(
      cudaMemcpyAsync(host.data(), device_counts, bytes, cudaMemcpyDeviceToHost, stream));
  TRIDENT_CHECK_CUDA(cudaStreamSynchronize(stream));
  for (size_t i = 0; i < pieces.size(); ++i) counts[i] = static_cast<int64_t>(host[i]);
  return counts;
}

}  // namespace trident::ops::cuda
