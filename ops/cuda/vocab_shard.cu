#include "ops/cuda/kernel_utils.h"
#include "ops/cuda/vocab_shard.h"
#include "ops/types.h"

namespace trident::ops::cuda {
namespace {

constexpr int kThreads = 256;

// The shard's column of a global id, or −1 (another shard's id, or the ignore index).
__device__ __forceinline__ int64_t shard_column(int32_t id, int64_t shard_begin, int64_t vocab) {
  if (id == kIgnoreIndex) return -1;
  const int64_t local = static_cast<int64_t>(id) - shard_begin;
  return local >= 0 && local < vocab ? local : -1;
}

__global__ void row_max_kernel(const float* logits, int64_t vocab, float* row_max) {
  __shared__ float scratch[detail::kWarp];
  const float* row = logits + blockIdx.x * vocab;
  float m = -INFINITY;
  for (int64_t v = threadIdx.x; v < vocab; v += blockDim.x) m = fmaxf(m, row[v]);
  m = detail::block_max(m, scratch);
  if (threadIdx.x == 0) row_max[blockIdx.x] = m;
}

// sums[t] = Σ exp(x − max) in double (stored f32); sums[T + t] = the target's logit or 0.
__global__ void softmax_sums_kernel(const float* logits, const int32_t* targets,
                                    int64_t shard_begin, const float* row_max, int64_t tokens,
                                    int64_t vocab, float* sums) {
  __shared__ double scratch[detail::kWarp];
  const int64_t t = blockIdx.x;
  const float* row = logits + t * vocab;
  double sum = 0.0;
  for (int64_t v = threadIdx.x; v < vocab; v += blockDim.x)
    sum += exp(static_cast<double>(row[v] - row_max[t]));
  sum = detail::block_sum(sum, scratch);
  if (threadIdx.x == 0) {
    sums[t] = static_cast<float>(sum);
    const int64_t col = shard_column(targets[t], shard_begin, vocab);
    sums[tokens + t] = col >= 0 ? row[col] : 0.0f;
  }
}

__global__ void backward_kernel(const float* logits, const int32_t* targets, const float* lse,
                                int64_t shard_begin, float grad_scale, int64_t vocab,
                                float* dlogits) {
  const int64_t t = blockIdx.x;
  const float* row = logits + t * vocab;
  float* out = dlogits + t * vocab;
  if (targets[t] == kIgnoreIndex) {
    for (int64_t v = threadIdx.x; v < vocab; v += blockDim.x) out[v] = 0.0f;
    return;
  }
  const int64_t col = shard_column(targets[t], shard_begin, vocab);
  for (int64_t v = threadIdx.x; v < vocab; v += blockDim.x) {
    const float p = expf(row[v] - lse[t]);
    out[v] = p * grad_scale - (v == col ? grad_scale : 0.0f);
  }
}

// [Z, W, z] of one row in double: a block per row.
__global__ void softmax_stats_kernel(const float* logits, const int32_t* targets,
                                     int64_t shard_begin, const float* row_max, int64_t vocab,
                                     double* parts) {
  __shared__ double scratch[detail::kWarp];
  const int64_t i = blockIdx.x;
  const float* l = logits + i * vocab;
  const detail::ShiftedExpSums sums = detail::block_shifted_exp_sums(l, vocab, row_max[i], scratch);
  if (threadIdx.x == 0) {
    const int64_t col = shard_column(targets[i], shard_begin, vocab);
    parts[3 * i] = sums.total;
    parts[3 * i + 1] = sums.weighted;
    parts[3 * i + 2] = col >= 0 ? l[col] : 0.0;
  }
}

// lse_weight [2n]: the row's lse, then its weight.
__global__ void logprob_backward_kernel(const float* logits, const int32_t* targets,
                                        int64_t shard_begin, const double* lse_weight, int64_t rows,
                                        int64_t vocab, float* dlogits) {
  const int64_t i = blockIdx.x;
  const double lse = lse_weight[i], w = lse_weight[rows + i];
  const float* l = logits + i * vocab;
  float* g = dlogits + i * vocab;
  const int64_t col = shard_column(targets[i], shard_begin, vocab);
  for (int64_t v = threadIdx.x; v < vocab; v += blockDim.x) {
    float value = w == 0.0 ? 0.0f : static_cast<float>(-w * exp(static_cast<double>(l[v]) - lse));
    if (v == col && w != 0.0) value += static_cast<float>(w);
    g[v] = value;
  }
}

detail::LogitRows check_shard(const Tensor& logits, const Tensor& targets) {
  return detail::logit_rows(logits, targets, "vocabulary shard", "[T, V/tp]");
}

}  // namespace

void shard_row_max(const Tensor& logits, Tensor& row_max, cudaStream_t stream) {
  detail::expect_dtype(logits, DType::F32, "shard_row_max logits");
  TRIDENT_CHECK(logits.dim() == 2, "shard_row_max logits must be [T, V/tp], got ",
                logits.describe());
  detail::expect_dtype(row_max, DType::F32, "shard_row_max row_max");
  detail::expect_numel(row_max, logits.size(0), "shard_row_max row_max");
  if (logits.size(0) == 0) return;
  row_max_kernel<<<static_cast<unsigned>(logits.size(0)), kThreads, 0, stream>>>(
      logits.data<float>(), logits.size(1), row_max.data<float>());
  TRIDENT_CHECK_LAUNCH();
}

void shard_softmax_sums(const Tensor& logits, const Tensor& targets, int64_t shard_begin,
                        const Tensor& row_max, Tensor& sums, cudaStream_t stream) {
  const detail::LogitRows r = check_shard(logits, targets);
  detail::expect_dtype(row_max, DType::F32, "shard_softmax_sums row_max");
  detail::expect_numel(row_max, r.tokens, "shard_softmax_sums row_max");
  detail::expect_dtype(sums, DType::F32, "shard_softmax_sums sums");
  detail::expect_numel(sums, 2 * r.tokens, "shard_softmax_sums sums");
  if (r.tokens == 0) return;
  softmax_sums_kernel<<<static_cast<unsigned>(r.tokens), kThreads, 0, stream>>>(
      logits.data<float>(), targets.data<int32_t>(), shard_begin, row_max.data<float>(), r.tokens,
      r.vocab, sums.data<float>());
  TRIDENT_CHECK_LAUNCH();
}

void shard_cross_entropy_backward(const Tensor& logits, const Tensor& targets, const Tensor& lse,
                                  int64_t shard_begin, float grad_scale, Tensor& dlogits,
                                  cudaStream_t stream) {
  const detail::LogitRows r = check_shard(logits, targets);
  detail::expect_dtype(lse, DType::F32, "shard_cross_entropy_backward lse");
  detail::expect_numel(lse, r.tokens, "shard_cross_entropy_backward lse");
  detail::expect_dtype(dlogits, DType::F32, "shard_cross_entropy_backward dlogits");
  detail::expect_numel(dlogits, r.tokens * r.vocab, "shard_cross_entropy_backward dlogits");
  if (r.tokens == 0) return;
  backward_kernel<<<static_cast<unsigned>(r.tokens), kThreads, 0, stream>>>(
      logits.data<float>(), targets.data<int32_t>(), lse.data<float>(), shard_begin, grad_scale,
      r.vocab, dlogits.data<float>());
  TRIDENT_CHECK_LAUNCH();
}

std::vector<double> shard_softmax_stats(const Tensor& logits, const Tensor& targets,
                                        int64_t shard_begin, const Tensor& row_max,
                                        cudaStream_t stream) {
  const detail::LogitRows r = check_shard(logits, targets);
  detail::expect_dtype(row_max, DType::F32, "shard_softmax_stats row_max");
  detail::expect_numel(row_max, r.tokens, "shard_softmax_stats row_max");
  std::vector<double> host(static_cast<size_t>(3 * r.tokens), 0.0);
  if (r.tokens == 0) return host;
  const detail::StreamScratch parts(host.size() * sizeof(double), stream);
  softmax_stats_kernel<<<static_cast<unsigned>(r.tokens), kThreads, 0, stream>>>(
      logits.data<float>(), targets.data<int32_t>(), shard_begin, row_max.data<float>(), r.vocab,
      static_cast<double*>(parts.get()));
  TRIDENT_CHECK_LAUNCH();
  TRIDENT_CHECK_CUDA(cudaMemcpyAsync(host.data(), parts.get(), host.size() * sizeof(double),
                                     cudaMemcpyDeviceToHost, stream));
  TRIDENT_CHECK_CUDA(cudaStreamSynchronize(stream));
  return host;
}

void shard_logprob_backward(const Tensor& logits, const Tensor& targets, int64_t shard_begin,
                            const std::vector<double>& lse, const std::vector<double>& weights,
                            Tensor& dlogits, cudaStream_t stream) {
  const detail::LogitRows r = check_shard(logits, targets);
  TRIDENT_CHECK(static_cast<int64_t>(lse.size()) == r.tokens &&
                    static_cast<int64_t>(weights.size()) == r.tokens,
                "shard_logprob_backward: ", lse.size(), " lse and ", weights.size(),
                " weights for ", r.tokens, " rows");
  detail::expect_dtype(dlogits, DType::F32, "shard_logprob_backward dlogits");
  detail::expect_numel(dlogits, r.tokens * r.vocab, "shard_logprob_backward dlogits");
  if (r.tokens == 0) return;
  std::vector<double> lse_weight(lse);
  lse_weight.insert(lse_weight.end(), weights.begin(), weights.end());
  // From pageable host memory the copy has taken the values when it returns (CUDA stages it).
  const detail::StreamScratch device_values(lse_weight.size() * sizeof(double), stream);
  TRIDENT_CHECK_CUDA(cudaMemcpyAsync(device_values.get(), lse_weight.data(),
                                     lse_weight.size() * sizeof(double), cudaMemcpyHostToDevice,
                                     stream));
  logprob_backward_kernel<<<static_cast<unsigned>(r.tokens), kThreads, 0, stream>>>(
      logits.data<float>(), targets.data<int32_t>(), shard_begin,
      static_cast<const double*>(device_values.get()), r.tokens, r.vocab, dlogits.data<float>());
  TRIDENT_CHECK_LAUNCH();
}

}  // namespace trident::ops::cuda
