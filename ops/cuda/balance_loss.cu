#include <vector>

#include "ops/cuda/balance_loss.h"
#include "ops/cuda/kernel_utils.h"

namespace trident::ops::cuda {
namespace {

using detail::kWarp;

constexpr int kThreads = 256;

// Block b = sequence b. Shared memory: g [E] floats (the counts first), P [E] doubles, and with
// device terms Σ f over each device [D] doubles and the tokens reaching it [D] unsigned.
// `z` holds one double per token of the whole batch (Σ_e s of that token).
__global__ void forward_kernel(BalanceLossShape s, const float* scores, const int32_t* indices,
                               double* z, float* per_expert, double* row_sums) {
  extern __shared__ double shared[];
  double* p = shared;                                                 // [E]
  double* device_f = p + s.experts;                                   // [D]
  auto* reached = reinterpret_cast<unsigned*>(device_f + s.devices);  // [D]
  float* g = reinterpret_cast<float*>(reached + s.devices);           // [E]
  const int64_t b = blockIdx.x;
  const int64_t E = s.experts, k = s.top_k, S = s.seq, D = s.devices, per_device = E / D;
  const int64_t first = b * S;
  for (int64_t e = threadIdx.x; e < E; e += blockDim.x) g[e] = 0.0f;
  for (int64_t d = threadIdx.x; d < D; d += blockDim.x) reached[d] = 0;
  __syncthreads();
  for (int64_t t = first + threadIdx.x; t < first + S; t += blockDim.x) {
    double sum = 0.0;
    for (int64_t e = 0; e < E; ++e) sum += scores[t * E + e];
    z[t] = sum;
    for (int64_t j = 0; j < k; ++j) atomicAdd(&g[indices[t * k + j]], 1.0f);  // exact counts
    if (s.device_terms()) {
      // A device counts once per token however many of its experts the token chose.
      for (int64_t j = 0; j < k; ++j) {
        const int64_t d = indices[t * k + j] / per_device;
        bool earlier = false;
        for (int64_t i = 0; i < j; ++i) earlier |= indices[t * k + i] / per_device == d;
        if (!earlier) atomicAdd(&reached[d], 1u);
      }
    }
  }
  __syncthreads();
  for (int64_t e = threadIdx.x; e < E; e += blockDim.x) {
    double sum = 0.0;
    for (int64_t t = first; t < first + S; ++t) sum += scores[t * E + e] / z[t];
    p[e] = sum;
    g[e] *= static_cast<float>(E) / static_cast<float>(k * S);
  }
  __syncthreads();
  if (s.device_terms()) {
    for (int64_t d = threadIdx.x; d < D; d += blockDim.x) {
      double sum = 0.0;
      for (int64_t e = d * per_device; e < (d + 1) * per_device; ++e) sum += g[e];
      device_f[d] = sum;
    }
    __syncthreads();
    const double comm_scale =
        static_cast<double>(D) / (static_cast<double>(s.max_devices) * static_cast<double>(S));
    for (int64_t e = threadIdx.x; e < E; e += blockDim.x) {
      const int64_t d = e / per_device;
      g[e] += static_cast<float>(s.device_weight * device_f[d] / static_cast<double>(per_device) +
                                 s.comm_weight * comm_scale * static_cast<double>(reached[d]));
    }
    __syncthreads();
  }
  for (int64_t e = threadIdx.x; e < E; e += blockDim.x) per_expert[b * E + e] = g[e];
  if (threadIdx.x == 0) {
    double sum = 0.0;
    for (int64_t e = 0; e < E; ++e)
      sum += static_cast<double>(g[e]) * p[e] / static_cast<double>(S);
    row_sums[b] = sum;
  }
}

// A warp per token: Z and Σ_e g_e s_e / Z, then each lane's experts.
__global__ void backward_kernel(BalanceLossShape s, double scale, const float* scores,
                                const float* per_expert, float* dlogits) {
  const int64_t t = (int64_t{blockIdx.x} * blockDim.x + threadIdx.x) / kWarp;
  const int lane = threadIdx.x % kWarp;
  if (t >= s.rows * s.seq) return;  // whole warps leave together
  const int64_t E = s.experts;
  const float* st = scores + t * E;
  const float* f = per_expert + (t / s.seq) * E;
  double z = 0.0;
  for (int64_t e = lane; e < E; e += kWarp) z += st[e];
  z = detail::warp_sum(z);
  double mean_g = 0.0;
  for (int64_t e = lane; e < E; e += kWarp) mean_g += static_cast<double>(f[e]) * st[e] / z;
  mean_g = detail::warp_sum(mean_g);
  double dot = 0.0;
  if (!s.sigmoid) {
    for (int64_t e = lane; e < E; e += kWarp) dot += scale * (f[e] - mean_g) / z * st[e];
    dot = detail::warp_sum(dot);
  }
  for (int64_t e = lane; e < E; e += kWarp) {
    const double ds = scale * (f[e] - mean_g) / z;
    const double through = s.sigmoid ? ds * st[e] * (1.0 - st[e]) : st[e] * (ds - dot);
    dlogits[t * E + e] += static_cast<float>(through);
  }
}

}  // namespace

double balance_loss_forward(const BalanceLossShape& shape, const Tensor& scores,
                            const Tensor& indices, Tensor& per_expert, cudaStream_t stream) {
  check_balance_loss(shape, scores, per_expert);
  detail::expect_dtype(scores, DType::F32, "balance loss scores");
  detail::expect_dtype(indices, DType::I32, "balance loss indices");
  detail::expect_numel(indices, shape.rows * shape.seq * shape.top_k, "balance loss indices");
  detail::expect_dtype(per_expert, DType::F32, "balance loss per_expert");
  const int64_t tokens = shape.rows * shape.seq;
  const detail::StreamScratch z(static_cast<size_t>(tokens) * sizeof(double), stream);
  const detail::StreamScratch row_sums(static_cast<size_t>(shape.rows) * sizeof(double), stream);
  const size_t shared = static_cast<size_t>(shape.experts + shape.devices) * sizeof(double) +
                        static_cast<size_t>(shape.devices) * sizeof(unsigned) +
                        static_cast<size_t>(shape.experts) * sizeof(float);
  forward_kernel<<<static_cast<unsigned>(shape.rows), kThreads, shared, stream>>>(
      shape, scores.data<float>(), indices.data<int32_t>(), static_cast<double*>(z.get()),
      per_expert.data<float>(), static_cast<double*>(row_sums.get()));
  TRIDENT_CHECK_LAUNCH();
  // The loss is a host value: the one synchronisation of this op.
  std::vector<double> sums(static_cast<size_t>(shape.rows));
  TRIDENT_CHECK_CUDA(cudaMemcpyAsync(sums.data(), row_sums.get(), sums.size() * sizeof(double),
                                     cudaMemcpyDeviceToHost, stream));
  TRIDENT_CHECK_CUDA(cudaStreamSynchronize(stream));
  double total = 0.0;
  for (const double sum : sums) total += sum;
  return total;
}

void balance_loss_backward(const BalanceLossShape& shape, float coef, const Tensor& scores,
                           const Tensor& per_expert, Tensor& dlogits, cudaStream_t stream) {
  check_balance_loss(shape, scores, per_expert);
  detail::expect_dtype(scores, DType::F32, "balance loss scores");
  detail::expect_dtype(per_expert, DType::F32, "balance loss per_expert");
  detail::expect_dtype(dlogits, DType::F32, "balance loss dlogits");
  detail::expect_numel(dlogits, scores.numel(), "balance loss dlogits");
  if (coef == 0.0f) return;
  const int64_t tokens = shape.rows * shape.seq;
  const double scale = static_cast<double>(coef) / static_cast<double>(shape.seq);
  backward_kernel<<<detail::blocks_for(tokens * kWarp, kThreads), kThreads, 0, stream>>>(
      shape, scale, scores.data<float>(), per_expert.data<float>(), dlogits.data<float>());
  TRIDENT_CHECK_LAUNCH();
}

}  // namespace trident::ops::cuda
