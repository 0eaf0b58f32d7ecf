#include "ops/cuda/cross_entropy.h"
#include "ops/cuda/kernel_utils.h"

namespace trident::ops::cuda {
namespace {

constexpr int kThreads = 512;

__device__ __forceinline__ bool counted(int32_t target, int64_t vocab) {
  return target >= 0 && target < vocab;
}

// lse[t] = log Σ_v exp(logits[t, v]); loss[t] = lse − logits[t, target] (0 when not counted).
__global__ void lse_kernel(const float* logits, const int32_t* targets, int64_t vocab, float* lse,
                           float* loss) {
  __shared__ float scratch[detail::kWarp];
  const float* row = logits + blockIdx.x * vocab;
  detail::LseState state;
  for (int64_t v = threadIdx.x; v < vocab; v += blockDim.x) state = detail::lse_push(state, row[v]);
  const float total = detail::block_logsumexp(state, scratch);
  if (threadIdx.x == 0) {
    lse[blockIdx.x] = total;
    const int32_t target = targets[blockIdx.x];
    if (loss != nullptr) loss[blockIdx.x] = counted(target, vocab) ? total - row[target] : 0.0f;
  }
}

struct LossSum {
  double loss;
  long long tokens;
  long long invalid;
};

// One block adds the per-token losses in double precision and counts the tokens.
__global__ void loss_sum_kernel(const float* loss, const int32_t* targets, int64_t tokens,
                                int64_t vocab, LossSum* result) {
  __shared__ double sums[1024];
  __shared__ long long counts[1024];
  __shared__ long long invalid[1024];
  double sum = 0.0;
  long long count = 0, bad = 0;
  for (int64_t t = threadIdx.x; t < tokens; t += blockDim.x) {
    const int32_t target = targets[t];
    if (counted(target, vocab)) {
      sum += loss[t];
      ++count;
    } else if (target != kIgnoreIndex) {
      ++bad;
    }
  }
  sums[threadIdx.x] = sum;
  counts[threadIdx.x] = count;
  invalid[threadIdx.x] = bad;
  __syncthreads();
  for (unsigned stride = blockDim.x / 2; stride > 0; stride /= 2) {
    if (threadIdx.x < stride) {
      sums[threadIdx.x] += sums[threadIdx.x + stride];
      counts[threadIdx.x] += counts[threadIdx.x + stride];
      invalid[threadIdx.x] += invalid[threadIdx.x + stride];
    }
    __syncthreads();
  }
  if (threadIdx.x == 0) *result = LossSum{sums[0], counts[0], invalid[0]};
}

__global__ void backward_kernel(const float* logits, const int32_t* targets, const float* lse,
                                float grad_scale, float* dlogits, int64_t vocab) {
  const int64_t t = blockIdx.x;
  const int32_t target = targets[t];
  const float* row = logits + t * vocab;
  float* out = dlogits + t * vocab;
  if (!counted(target, vocab)) {
    for (int64_t v = threadIdx.x; v < vocab; v += blockDim.x) out[v] = 0.0f;
    return;
  }
  const float norm = lse[t];
  for (int64_t v = threadIdx.x; v < vocab; v += blockDim.x) {
    const float p = __expf(row[v] - norm);
    out[v] = (p - (v == target ? 1.0f : 0.0f)) * grad_scale;
  }
}

__global__ void logprob_kernel(const float* logits, const int32_t* targets, const float* lse,
                               float* logprobs, int64_t tokens, int64_t vocab) {
  const int64_t t = blockIdx.x * int64_t{blockDim.x} + threadIdx.x;
  if (t >= tokens) return;
  const int32_t target = targets[t];
  logprobs[t] = counted(target, vocab) ? logits[t * vocab + target] - lse[t] : 0.0f;
}

detail::LogitRows check_logits(const Tensor& logits, const Tensor& targets) {
  return detail::logit_rows(logits, targets, "cross-entropy", "[T, V]");
}

// log Σ exp and Σ p · logit of one row in double, by the whole block (every thread gets both).
struct RowStats {
  double lse;
  double mean_logit;
};
__device__ RowStats row_stats(const float* row, int64_t vocab, float* float_scratch,
                              double* double_scratch) {
  float local_max = -INFINITY;
  for (int64_t v = threadIdx.x; v < vocab; v += blockDim.x) local_max = fmaxf(local_max, row[v]);
  const double max = detail::block_max(local_max, float_scratch);
  const detail::ShiftedExpSums sums =
      detail::block_shifted_exp_sums(row, vocab, max, double_scratch);
  return RowStats{max + log(sums.total), sums.weighted / sums.total};
}

__global__ void scores_kernel(const float* logits, const int32_t* targets, int64_t vocab,
                              TokenScore* scores) {
  __shared__ float float_scratch[detail::kWarp];
  __shared__ double double_scratch[detail::kWarp];
  const int64_t t = blockIdx.x;
  const int32_t target = targets[t];
  if (!counted(target, vocab)) {  // the whole block leaves
    if (threadIdx.x == 0) scores[t] = TokenScore{0.0, 0.0};
    return;
  }
  const float* row = logits + t * vocab;
  const RowStats stats = row_stats(row, vocab, float_scratch, double_scratch);
  if (threadIdx.x == 0) {
    scores[t] =
        TokenScore{static_cast<double>(row[target]) - stats.lse, stats.lse - stats.mean_logit};
  }
}

__global__ void logprob_grad_kernel(const float* logits, const int32_t* targets,
                                    const double* weights, int64_t vocab, float* dlogits) {
  __shared__ float float_scratch[detail::kWarp];
  __shared__ double double_scratch[detail::kWarp];
  const int64_t t = blockIdx.x;
  const int32_t target = targets[t];
  const double w = weights[t];
  float* g = dlogits + t * vocab;
  if (!counted(target, vocab) || w == 0.0) {  // the whole block takes this branch
    for (int64_t v = threadIdx.x; v < vocab; v += blockDim.x) g[v] = 0.0f;
    return;
  }
  const float* row = logits + t * vocab;
  const double lse = row_stats(row, vocab, float_scratch, double_scratch).lse;
  for (int64_t v = threadIdx.x; v < vocab; v += blockDim.x) {
    float value = static_cast<float>(-w * exp(static_cast<double>(row[v]) - lse));
    if (v == target) value += static_cast<float>(w);
    g[v] = value;
  }
}

}  // namespace

CrossEntropyResult cross_entropy_forward(const Tensor& logits, const Tensor& targets, Tensor& lse,
                                         cudaStream_t stream) {
  const detail::LogitRows r = check_logits(logits, targets);
  detail::expect_dtype(lse, DType::F32, "cross-entropy lse");
  detail::expect_numel(lse, r.tokens, "cross-entropy lse");
  CrossEntropyResult result;
  if (r.tokens == 0) return result;
  const detail::StreamScratch loss(static_cast<size_t>(r.tokens) * sizeof(float), stream);
  const detail::StreamScratch sum(sizeof(LossSum), stream);
  lse_kernel<<<static_cast<unsigned>(r.tokens), kThreads, 0, stream>>>(
      logits.data<float>(), targets.data<int32_t>(), r.vocab, lse.data<float>(),
      static_cast<float*>(loss.get()));
  TRIDENT_CHECK_LAUNCH();
  loss_sum_kernel<<<1, 1024, 0, stream>>>(static_cast<const float*>(loss.get()),
                                          targets.data<int32_t>(), r.tokens, r.vocab,
                                          static_cast<LossSum*>(sum.get()));
  TRIDENT_CHECK_LAUNCH();
  LossSum host{};
  TRIDENT_CHECK_CUDA(
      cudaMemcpyAsync(&host, sum.get(), sizeof(LossSum), cudaMemcpyDeviceToHost, stream));
  TRIDENT_CHECK_CUDA(cudaStreamSynchronize(stream));
  TRIDENT_CHECK(host.invalid == 0, host.invalid, " cross-entropy targets lie outside [0, ",
                r.vocab, ") and are not the ignore index ", kIgnoreIndex);
  result.loss_sum = host.loss;
  result.tokens = host.tokens;
  return result;
}

void cross_entropy_backward(const Tensor& logits, const Tensor& targets, const Tensor& lse,
                            float grad_scale, Tensor& dlogits, cudaStream_t stream) {
  const detail::LogitRows r = check_logits(logits, targets);
  detail::expect_dtype(lse, DType::F32, "cross-entropy lse");
  detail::expect_numel(lse, r.tokens, "cross-entropy lse");
  detail::expect_dtype(dlogits, DType::F32, "cross-entropy dlogits");
  detail::expect_numel(dlogits, logits.numel(), "cross-entropy dlogits");
  if (r.tokens == 0) return;
  backward_kernel<<<static_cast<unsigned>(r.tokens), kThreads, 0, stream>>>(
      logits.data<float>(), targets.data<int32_t>(), lse.data<float>(), grad_scale,
      dlogits.data<float>(), r.vocab);
  TRIDENT_CHECK_LAUNCH();
}

void token_logprobs(const Tensor& logits, const Tensor& targets, Tensor& logprobs,
                    cudaStream_t stream) {
  const detail::LogitRows r = check_logits(logits, targets);
  detail::expect_dtype(logprobs, DType::F32, "token log-probs");
  detail::expect_numel(logprobs, r.tokens, "token log-probs");
  if (r.tokens == 0) return;
  const detail::StreamScratch lse(static_cast<size_t>(r.tokens) * sizeof(float), stream);
  lse_kernel<<<static_cast<unsigned>(r.tokens), kThreads, 0, stream>>>(
      logits.data<float>(), targets.data<int32_t>(), r.vocab, static_cast<float*>(lse.get()),
      nullptr);
  TRIDENT_CHECK_LAUNCH();
  logprob_kernel<<<detail::blocks_for(r.tokens, 256), 256, 0, stream>>>(
      logits.data<float>(), targets.data<int32_t>(), static_cast<const float*>(lse.get()),
      logprobs.data<float>(), r.tokens, r.vocab);
  TRIDENT_CHECK_LAUNCH();
}

std::vector<TokenScore> token_scores(const Tensor& logits, const Tensor& targets,
                                     cudaStream_t stream) {
  const detail::LogitRows r = check_logits(logits, targets);
  std::vector<TokenScore> host(static_cast<size_t>(r.tokens));
  if (r.tokens == 0) return host;
  const detail::StreamScratch scores(host.size() * sizeof(TokenScore), stream);
  scores_kernel<<<static_cast<unsigned>(r.tokens), kThreads, 0, stream>>>(
      logits.data<float>(), targets.data<int32_t>(), r.vocab,
      static_cast<TokenScore*>(scores.get()));
  TRIDENT_CHECK_LAUNCH();
  TRIDENT_CHECK_CUDA(cudaMemcpyAsync(host.data(), scores.get(), host.size() * sizeof(TokenScore),
                                     cudaMemcpyDeviceToHost, stream));
  TRIDENT_CHECK_CUDA(cudaStreamSynchronize(stream));
  return host;
}

void token_logprobs_backward(const Tensor& logits, const Tensor& targets,
                             const std::vector<double>& weights, Tensor& dlogits,
                             cudaStream_t stream) {
  const detail::LogitRows r = check_logits(logits, targets);
  TRIDENT_CHECK(static_cast<int64_t>(weights.size()) == r.tokens,
                "token_logprobs_backward: ", weights.size(), " weights for ", r.tokens, " tokens");
  detail::expect_dtype(dlogits, DType::F32, "token_logprobs_backward dlogits");
  detail::expect_numel(dlogits, logits.numel(), "token_logprobs_backward dlogits");
  if (r.tokens == 0) return;
  // From pageable host memory the copy has taken the weights when it returns (CUDA stages it),
  // so the vector may go at once and nothing here waits for the device.
  const detail::StreamScratch device_weights(weights.size() * sizeof(double), stream);
  TRIDENT_CHECK_CUDA(cudaMemcpyAsync(device_weights.get(), weights.data(),
                                     weights.size() * sizeof(double), cudaMemcpyHostToDevice,
                                     stream));
  logprob_grad_kernel<<<static_cast<unsigned>(r.tokens), kThreads, 0, stream>>>(
      logits.data<float>(), targets.data<int32_t>(),
      static_cast<const double*>(device_weights.get()), r.vocab, dlogits.data<float>());
  TRIDENT_CHECK_LAUNCH();
}

}  // namespace trident::ops::cuda
