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

struct Rows {
  int64_t tokens;
  int64_t vocab;
};

Rows check_logits(const Tensor& logits, const Tensor& targets) {
  detail::expect_dtype(logits, DType::F32, "cross-entropy logits");
  detail::expect_dtype(targets, DType::I32, "cross-entropy targets");
  TRIDENT_CHECK(logits.dim() == 2, "cross-entropy logits must be [T, V], got ",
                logits.describe());
  detail::expect_numel(targets, logits.size(0), "cross-entropy targets");
  return Rows{logits.size(0), logits.size(1)};
}

}  // namespace

CrossEntropyResult cross_entropy_forward(const Tensor& logits, const Tensor& targets, Tensor& lse,
                                         cudaStream_t stream) {
  const Rows r = check_logits(logits, targets);
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
  const Rows r = check_logits(logits, targets);
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
  const Rows r = check_logits(logits, targets);
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

}  // namespace trident::ops::cuda
