#include "ops/cuda/kernel_utils.h"
#include "ops/cuda/router.h"

namespace trident::ops::cuda {
namespace {

using detail::kWarp;

constexpr int kWarpsPerBlock = 4;
constexpr int kMaxE = static_cast<int>(kMaxRouterExperts);
constexpr unsigned kFull = 0xffffffffu;

struct RouterArgs {
  int experts;
  int top_k;
  int n_group;
  int topk_group;
  int group_top;
  float scaling;
  bool normalize;
  bool sigmoid;
};

__device__ __forceinline__ float taken_marker() { return __int_as_float(0x7fffffff); }  // NaN

// Warp-wide argmax; ties go to the lower expert index. NaN (taken) entries never win.
__device__ __forceinline__ void warp_argmax(float& value, int& index) {
  for (int offset = kWarp / 2; offset > 0; offset /= 2) {
    const float other_value = __shfl_xor_sync(kFull, value, offset);
    const int other_index = __shfl_xor_sync(kFull, index, offset);
    if (other_value > value || (other_value == value && other_index < index)) {
      value = other_value;
      index = other_index;
    }
  }
}

__global__ void router_forward_kernel(RouterArgs a, const float* logits, const float* bias,
                                      int32_t* indices, float* weights, float* scores,
                                      int64_t tokens) {
  __shared__ float score_of[kWarpsPerBlock][kMaxE];
  __shared__ float biased_of[kWarpsPerBlock][kMaxE];
  __shared__ int keep_group[kWarpsPerBlock][kWarp];
  const int warp = threadIdx.x / kWarp;
  const int lane = threadIdx.x % kWarp;
  const int64_t t = blockIdx.x * int64_t{kWarpsPerBlock} + warp;
  if (t >= tokens) return;  // whole warps leave together; no block-wide barrier follows
  const int E = a.experts;
  const float* row = logits + t * E;
  float* s = score_of[warp];
  float* b = biased_of[warp];

  if (a.sigmoid) {
    for (int e = lane; e < E; e += kWarp) s[e] = 1.0f / (1.0f + expf(-row[e]));
  } else {
    float m = -INFINITY;
    for (int e = lane; e < E; e += kWarp) m = fmaxf(m, row[e]);
    m = detail::warp_max(m);
    float sum = 0.0f;
    for (int e = lane; e < E; e += kWarp) sum += expf(row[e] - m);
    sum = detail::warp_sum(sum);
    for (int e = lane; e < E; e += kWarp) s[e] = expf(row[e] - m) / sum;
  }
  for (int e = lane; e < E; e += kWarp) {
    scores[t * E + e] = s[e];
    b[e] = s[e] + bias[e];
  }
  __syncwarp();

  if (a.n_group > 1 && a.topk_group < a.n_group) {
    // Group score = sum of the group_top (2 or 1) best biased scores; keep the best groups.
    const int group_size = E / a.n_group;
    float group_score = -INFINITY;
    if (lane < a.n_group) {
      float first = -INFINITY, second = -INFINITY;
      for (int e = lane * group_size; e < (lane + 1) * group_size; ++e) {
        if (b[e] > first) {
          second = first;
          first = b[e];
        } else if (b[e] > second) {
          second = b[e];
        }
      }
      group_score = a.group_top >= 2 && group_size >= 2 ? first + second : first;
    }
    int rank = 0;
    for (int g = 0; g < a.n_group; ++g) {
      const float other = __shfl_sync(kFull, group_score, g);
      if (other > group_score || (other == group_score && g < lane)) ++rank;
    }
    keep_group[warp][lane] = lane < a.n_group && rank < a.topk_group;
    __syncwarp();
    for (int e = lane; e < E; e += kWarp)
      if (!keep_group[warp][e / group_size]) b[e] = -INFINITY;
    __syncwarp();
  }

  int chosen = 0;
  for (int j = 0; j < a.top_k; ++j) {
    float best = -INFINITY;
    int best_index = E;
    for (int e = lane; e < E; e += kWarp) {
      if (b[e] > best || (b[e] == best && e < best_index)) {
        best = b[e];
        best_index = e;
      }
    }
    warp_argmax(best, best_index);
    if (lane == j) chosen = best_index;
    __syncwarp();
    if (lane == 0) b[best_index] = taken_marker();
    __syncwarp();
  }

  const float picked = lane < a.top_k ? s[chosen] : 0.0f;
  const float total = detail::warp_sum(picked);
  float w = a.normalize ? picked / (total + 1e-20f) : picked;
  w *= a.scaling;
  if (lane < a.top_k) {
    indices[t * a.top_k + lane] = chosen;
    weights[t * a.top_k + lane] = w;
  }
}

__global__ void router_backward_kernel(RouterArgs a, const float* dweights,
                                       const int32_t* indices, const float* scores,
                                       float* dlogits, int64_t tokens) {
  __shared__ float dscore_of[kWarpsPerBlock][kMaxE];
  const int warp = threadIdx.x / kWarp;
  const int lane = threadIdx.x % kWarp;
  const int64_t t = blockIdx.x * int64_t{kWarpsPerBlock} + warp;
  if (t >= tokens) return;
  const int E = a.experts;
  const float* s = scores + t * E;
  float* ds = dscore_of[warp];
  for (int e = lane; e < E; e += kWarp) ds[e] = 0.0f;
  __syncwarp();

  const bool mine = lane < a.top_k;
  const int e_sel = mine ? indices[t * a.top_k + lane] : 0;
  const float s_sel = mine ? s[e_sel] : 0.0f;
  const float dw = mine ? dweights[t * a.top_k + lane] : 0.0f;
  // w_j = c · s_j / Z with Z = Σ s + 1e-20: ∂/∂s_m = c · (dw_m / Z − Σ_j dw_j s_j / Z²).
  float grad = a.scaling * dw;
  if (a.normalize) {
    const float z = detail::warp_sum(s_sel) + 1e-20f;
    const float dot = detail::warp_sum(dw * s_sel);
    grad = a.scaling * (dw / z - dot / (z * z));
  }
  if (mine) ds[e_sel] = grad;
  __syncwarp();

  float* out = dlogits + t * E;
  if (a.sigmoid) {
    for (int e = lane; e < E; e += kWarp) out[e] = ds[e] * s[e] * (1.0f - s[e]);
  } else {
    float dot = 0.0f;
    for (int e = lane; e < E; e += kWarp) dot += ds[e] * s[e];
    dot = detail::warp_sum(dot);
    for (int e = lane; e < E; e += kWarp) out[e] = s[e] * (ds[e] - dot);
  }
}

RouterArgs router_args(const RouterSettings& settings) {
  TRIDENT_CHECK(settings.experts >= 1 && settings.experts <= kMaxRouterExperts,
                "the CUDA router supports 1..", kMaxRouterExperts, " experts, got ",
                settings.experts);
  TRIDENT_CHECK(settings.top_k >= 1 && settings.top_k <= kWarp && settings.top_k <= settings.experts,
                "the CUDA router supports top_k in 1..min(32, experts), got ", settings.top_k);
  TRIDENT_CHECK(settings.n_group >= 1 && settings.n_group <= kWarp &&
                    settings.experts % settings.n_group == 0,
                "n_group must divide the experts and be at most 32, got ", settings.n_group);
  TRIDENT_CHECK(settings.topk_group >= 1 && settings.topk_group <= settings.n_group,
                "topk_group must be in 1..n_group, got ", settings.topk_group);
  TRIDENT_CHECK(settings.group_top == 1 || settings.group_top == 2,
                "group_top must be 1 or 2, got ", settings.group_top);
  return RouterArgs{static_cast<int>(settings.experts),
                    static_cast<int>(settings.top_k),
                    static_cast<int>(settings.n_group),
                    static_cast<int>(settings.topk_group),
                    static_cast<int>(settings.group_top),
                    settings.scaling,
                    settings.normalize,
                    settings.sigmoid};
}

// The token count of `per_expert` [tokens, experts] (logits or scores), checked with the chosen
// experts `indices` [tokens, top_k] that forward writes and backward reads.
int64_t router_tokens(const RouterSettings& settings, const Tensor& per_expert, const char* name,
                      const Tensor& indices) {
  detail::expect_dtype(per_expert, DType::F32, name);
  detail::expect_dtype(indices, DType::I32, "router indices");
  const int64_t tokens = per_expert.numel() / settings.experts;
  detail::expect_numel(per_expert, tokens * settings.experts, name);
  detail::expect_numel(indices, tokens * settings.top_k, "router indices");
  return tokens;
}

unsigned router_blocks(int64_t tokens) {
  return static_cast<unsigned>((tokens + kWarpsPerBlock - 1) / kWarpsPerBlock);
}

}  // namespace

void router_forward(const RouterSettings& settings, const Tensor& logits, const Tensor& bias,
                    Tensor& indices, Tensor& weights, Tensor& scores, cudaStream_t stream) {
  const RouterArgs a = router_args(settings);
  const int64_t tokens = router_tokens(settings, logits, "router logits", indices);
  detail::expect_dtype(bias, DType::F32, "router bias");
  detail::expect_dtype(weights, DType::F32, "router weights");
  detail::expect_dtype(scores, DType::F32, "router scores");
  detail::expect_numel(bias, settings.experts, "router bias");
  detail::expect_numel(weights, tokens * settings.top_k, "router weights");
  detail::expect_numel(scores, tokens * settings.experts, "router scores");
  if (tokens == 0) return;
  router_forward_kernel<<<router_blocks(tokens), kWarpsPerBlock * kWarp, 0, stream>>>(
      a, logits.data<float>(), bias.data<float>(), indices.data<int32_t>(),
      weights.data<float>(), scores.data<float>(), tokens);
  TRIDENT_CHECK_LAUNCH();
}

void router_backward(const RouterSettings& settings, const Tensor& dweights, const Tensor& indices,
                     const Tensor& scores, Tensor& dlogits, cudaStream_t stream) {
  const RouterArgs a = router_args(settings);
  const int64_t tokens = router_tokens(settings, scores, "router scores", indices);
  detail::expect_dtype(dweights, DType::F32, "router dweights");
  detail::expect_dtype(dlogits, DType::F32, "router dlogits");
  detail::expect_numel(dweights, tokens * settings.top_k, "router dweights");
  detail::expect_numel(dlogits, tokens * settings.experts, "router dlogits");
  if (tokens == 0) return;
  router_backward_kernel<<<router_blocks(tokens), kWarpsPerBlock * kWarp, 0, stream>>>(
      a, dweights.data<float>(), indices.data<int32_t>(), scores.data<float>(),
      dlogits.data<float>(), tokens);
  TRIDENT_CHECK_LAUNCH();
}

}  // namespace trident::ops::cuda
