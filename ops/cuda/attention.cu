#include "ops/cuda/attention.h"
#include "ops/cuda/kernel_utils.h"

namespace trident::ops::cuda {
namespace {

using detail::kWarp;

constexpr int kThreads = 128;
constexpr int kWarps = kThreads / kWarp;
constexpr int kChunk = 32;          // rows whose coefficients are staged in shared memory
constexpr int kMaxPerThread = 4;    // head dims up to kThreads · kMaxPerThread
constexpr int64_t kMaxHeadDim = int64_t{kThreads} * kMaxPerThread;

// Geometry of one launch: the (sequence, head) pair is blockIdx.y, the row is blockIdx.x.
struct Geometry {
  int64_t seq;
  int64_t heads;
  int64_t qk_dim;
  int64_t v_dim;
  float scale;
};

__device__ __forceinline__ int64_t token_of(const Geometry& g, int64_t row) {
  return (blockIdx.y / g.heads) * g.seq + row;
}
__device__ __forceinline__ int64_t head_of(const Geometry& g) { return blockIdx.y % g.heads; }
__device__ __forceinline__ int64_t lse_index(const Geometry& g, int64_t row) {
  return int64_t{blockIdx.y} * g.seq + row;  // [B, H, S] with blockIdx.y = b·H + h
}
__device__ __forceinline__ const float* qk_row(const float* base, const Geometry& g, int64_t row) {
  return base + (token_of(g, row) * g.heads + head_of(g)) * g.qk_dim;
}
__device__ __forceinline__ const float* v_row(const float* base, const Geometry& g, int64_t row) {
  return base + (token_of(g, row) * g.heads + head_of(g)) * g.v_dim;
}

// Dot product of a shared-memory vector with a global one, by one warp; all lanes get it.
__device__ __forceinline__ float warp_dot(const float* shared, const float* global, int64_t n) {
  float sum = 0.0f;
  for (int64_t d = threadIdx.x % kWarp; d < n; d += kWarp) sum += shared[d] * global[d];
  return detail::warp_sum(sum);
}

__device__ __forceinline__ void load_row(float* shared, const float* global, int64_t n) {
  for (int64_t d = threadIdx.x; d < n; d += blockDim.x) shared[d] = global[d];
}

// acc[r] += Σ_c coeff[c] · row(c)[threadIdx.x + r·blockDim.x] over the staged rows.
template <typename RowOf>
__device__ __forceinline__ void accumulate_rows(float (&acc)[kMaxPerThread], const float* coeff,
                                                int count, int64_t n, RowOf row_of) {
  for (int c = 0; c < count; ++c) {
    const float w = coeff[c];
    const float* row = row_of(c);
#pragma unroll
    for (int r = 0; r < kMaxPerThread; ++r) {
      const int64_t d = threadIdx.x + int64_t{r} * blockDim.x;
      if (d < n) acc[r] += w * row[d];
    }
  }
}

__device__ __forceinline__ void store_acc(float* out, const float (&acc)[kMaxPerThread],
                                          int64_t n) {
#pragma unroll
  for (int r = 0; r < kMaxPerThread; ++r) {
    const int64_t d = threadIdx.x + int64_t{r} * blockDim.x;
    if (d < n) out[d] = acc[r];
  }
}

// out_i = Σ_{j ≤ i} exp(s_ij − lse_i) · v_j with s_ij = scale · q_i · k_j.
__global__ void forward_kernel(Geometry g, const float* q, const float* k, const float* v,
                               float* out, float* lse) {
  extern __shared__ float shared[];
  float* q_shared = shared;                // [qk_dim]
  float* coeff = shared + g.qk_dim;        // [kChunk]
  __shared__ float max_of_warp[kWarps], sum_of_warp[kWarps], row_lse;
  const int64_t i = blockIdx.x;
  const int warp = threadIdx.x / kWarp;
  const int lane = threadIdx.x % kWarp;
  load_row(q_shared, qk_row(q, g, i), g.qk_dim);
  __syncthreads();

  detail::LseState state;
  for (int64_t j = warp; j <= i; j += kWarps)
    state = detail::lse_push(state, g.scale * warp_dot(q_shared, qk_row(k, g, j), g.qk_dim));
  if (lane == 0) {
    max_of_warp[warp] = state.max;
    sum_of_warp[warp] = state.sum;
  }
  __syncthreads();
  if (threadIdx.x == 0) {
    detail::LseState total;
    for (int w = 0; w < kWarps; ++w) total = detail::lse_merge(total, {max_of_warp[w], sum_of_warp[w]});
    row_lse = total.max + logf(total.sum);
    lse[lse_index(g, i)] = row_lse;
  }
  __syncthreads();
  const float log_norm = row_lse;

  float acc[kMaxPerThread] = {};
  for (int64_t start = 0; start <= i; start += kChunk) {
    const int count = static_cast<int>(min(int64_t{kChunk}, i + 1 - start));
    for (int c = warp; c < count; c += kWarps) {
      const float s = g.scale * warp_dot(q_shared, qk_row(k, g, start + c), g.qk_dim);
      if (lane == 0) coeff[c] = __expf(s - log_norm);
    }
    __syncthreads();
    accumulate_rows(acc, coeff, count, g.v_dim, [&](int c) { return v_row(v, g, start + c); });
    __syncthreads();
  }
  store_acc(out + (token_of(g, i) * g.heads + head_of(g)) * g.v_dim, acc, g.v_dim);
}

// delta_i = dout_i · out_i, one warp per (token, head).
__global__ void delta_kernel(const float* dout, const float* out, float* delta, int64_t tokens,
                             int64_t seq, int64_t heads, int64_t v_dim) {
  const int64_t item = (blockIdx.x * int64_t{blockDim.x} + threadIdx.x) / kWarp;
  if (item >= tokens * heads) return;
  const int64_t token = item / heads;
  const int64_t head = item % heads;
  const float* a = dout + item * v_dim;
  const float* b = out + item * v_dim;
  float sum = 0.0f;
  for (int64_t d = threadIdx.x % kWarp; d < v_dim; d += kWarp) sum += a[d] * b[d];
  sum = detail::warp_sum(sum);
  const int64_t batch = token / seq;
  if (threadIdx.x % kWarp == 0) delta[(batch * heads + head) * seq + token % seq] = sum;
}

// dq_i = scale · Σ_{j ≤ i} P_ij (dP_ij − delta_i) k_j with dP_ij = dout_i · v_j.
__global__ void dq_kernel(Geometry g, const float* dout, const float* q, const float* k,
                          const float* v, const float* lse, const float* delta, float* dq) {
  extern __shared__ float shared[];
  float* q_shared = shared;                  // [qk_dim]
  float* do_shared = shared + g.qk_dim;      // [v_dim]
  float* coeff = do_shared + g.v_dim;        // [kChunk]
  const int64_t i = blockIdx.x;
  const int warp = threadIdx.x / kWarp;
  const int lane = threadIdx.x % kWarp;
  load_row(q_shared, qk_row(q, g, i), g.qk_dim);
  load_row(do_shared, v_row(dout, g, i), g.v_dim);
  __syncthreads();
  const float row_lse = lse[lse_index(g, i)];
  const float row_delta = delta[lse_index(g, i)];

  float acc[kMaxPerThread] = {};
  for (int64_t start = 0; start <= i; start += kChunk) {
    const int count = static_cast<int>(min(int64_t{kChunk}, i + 1 - start));
    for (int c = warp; c < count; c += kWarps) {
      const int64_t j = start + c;
      const float p = __expf(g.scale * warp_dot(q_shared, qk_row(k, g, j), g.qk_dim) - row_lse);
      const float dp = warp_dot(do_shared, v_row(v, g, j), g.v_dim);
      if (lane == 0) coeff[c] = g.scale * p * (dp - row_delta);
    }
    __syncthreads();
    accumulate_rows(acc, coeff, count, g.qk_dim, [&](int c) { return qk_row(k, g, start + c); });
    __syncthreads();
  }
  store_acc(dq + (token_of(g, i) * g.heads + head_of(g)) * g.qk_dim, acc, g.qk_dim);
}

// For key row j: dv_j = Σ_{i ≥ j} P_ij dout_i, dk_j = scale · Σ_{i ≥ j} P_ij (dP_ij − delta_i) q_i.
__global__ void dkdv_kernel(Geometry g, const float* dout, const float* q, const float* k,
                            const float* v, const float* lse, const float* delta, float* dk,
                            float* dv) {
  extern __shared__ float shared[];
  float* k_shared = shared;                  // [qk_dim]
  float* v_shared = shared + g.qk_dim;       // [v_dim]
  float* p_coeff = v_shared + g.v_dim;       // [kChunk]
  float* ds_coeff = p_coeff + kChunk;        // [kChunk]
  const int64_t j = blockIdx.x;
  const int warp = threadIdx.x / kWarp;
  const int lane = threadIdx.x % kWarp;
  load_row(k_shared, qk_row(k, g, j), g.qk_dim);
  load_row(v_shared, v_row(v, g, j), g.v_dim);
  __syncthreads();

  float acc_k[kMaxPerThread] = {};
  float acc_v[kMaxPerThread] = {};
  for (int64_t start = j; start < g.seq; start += kChunk) {
    const int count = static_cast<int>(min(int64_t{kChunk}, g.seq - start));
    for (int c = warp; c < count; c += kWarps) {
      const int64_t i = start + c;
      const float s = g.scale * warp_dot(k_shared, qk_row(q, g, i), g.qk_dim);
      const float p = __expf(s - lse[lse_index(g, i)]);
      const float dp = warp_dot(v_shared, v_row(dout, g, i), g.v_dim);
      if (lane == 0) {
        p_coeff[c] = p;
        ds_coeff[c] = g.scale * p * (dp - delta[lse_index(g, i)]);
      }
    }
    __syncthreads();
    accumulate_rows(acc_v, p_coeff, count, g.v_dim, [&](int c) { return v_row(dout, g, start + c); });
    accumulate_rows(acc_k, ds_coeff, count, g.qk_dim, [&](int c) { return qk_row(q, g, start + c); });
    __syncthreads();
  }
  const int64_t item = token_of(g, j) * g.heads + head_of(g);
  store_acc(dk + item * g.qk_dim, acc_k, g.qk_dim);
  store_acc(dv + item * g.v_dim, acc_v, g.v_dim);
}

Geometry check_shapes(const AttentionShape& shape, const Tensor& q, const Tensor& k,
                      const Tensor& v) {
  TRIDENT_CHECK(shape.batch > 0 && shape.seq > 0 && shape.heads > 0 && shape.qk_dim > 0 &&
                    shape.v_dim > 0,
                "attention shape must be positive");
  TRIDENT_CHECK(shape.qk_dim <= kMaxHeadDim && shape.v_dim <= kMaxHeadDim,
                "attention head dims above ", kMaxHeadDim, " are not supported (qk ",
                shape.qk_dim, ", v ", shape.v_dim, ")");
  TRIDENT_CHECK(shape.batch * shape.heads <= 65535, "attention batch·heads above 65535");
  const int64_t rows = shape.batch * shape.seq * shape.heads;
  detail::expect_dtype(q, DType::F32, "attention q");
  detail::expect_dtype(k, DType::F32, "attention k");
  detail::expect_dtype(v, DType::F32, "attention v");
  detail::expect_numel(q, rows * shape.qk_dim, "attention q");
  detail::expect_numel(k, rows * shape.qk_dim, "attention k");
  detail::expect_numel(v, rows * shape.v_dim, "attention v");
  return Geometry{shape.seq, shape.heads, shape.qk_dim, shape.v_dim, shape.scale};
}

dim3 grid_of(const AttentionShape& shape) {
  return dim3(static_cast<unsigned>(shape.seq), static_cast<unsigned>(shape.batch * shape.heads));
}

size_t floats(int64_t n) { return static_cast<size_t>(n) * sizeof(float); }

}  // namespace

void attention_forward(const AttentionShape& shape, const Tensor& q, const Tensor& k,
                       const Tensor& v, Tensor& out, Tensor& lse, cudaStream_t stream) {
  const Geometry g = check_shapes(shape, q, k, v);
  detail::expect_dtype(out, DType::F32, "attention out");
  detail::expect_dtype(lse, DType::F32, "attention lse");
  detail::expect_numel(out, v.numel(), "attention out");
  detail::expect_numel(lse, shape.batch * shape.heads * shape.seq, "attention lse");
  forward_kernel<<<grid_of(shape), kThreads, floats(g.qk_dim + kChunk), stream>>>(
      g, q.data<float>(), k.data<float>(), v.data<float>(), out.data<float>(), lse.data<float>());
  TRIDENT_CHECK_LAUNCH();
}

void attention_backward(const AttentionShape& shape, const Tensor& dout, const Tensor& q,
                        const Tensor& k, const Tensor& v, const Tensor& out, const Tensor& lse,
                        Tensor& dq, Tensor& dk, Tensor& dv, cudaStream_t stream) {
  const Geometry g = check_shapes(shape, q, k, v);
  detail::expect_dtype(dout, DType::F32, "attention dout");
  detail::expect_dtype(out, DType::F32, "attention out");
  detail::expect_dtype(lse, DType::F32, "attention lse");
  detail::expect_dtype(dq, DType::F32, "attention dq");
  detail::expect_dtype(dk, DType::F32, "attention dk");
  detail::expect_dtype(dv, DType::F32, "attention dv");
  detail::expect_numel(dout, v.numel(), "attention dout");
  detail::expect_numel(out, v.numel(), "attention out");
  detail::expect_numel(lse, shape.batch * shape.heads * shape.seq, "attention lse");
  detail::expect_numel(dq, q.numel(), "attention dq");
  detail::expect_numel(dk, k.numel(), "attention dk");
  detail::expect_numel(dv, v.numel(), "attention dv");

  const detail::StreamScratch delta_memory(floats(lse.numel()), stream);
  const Tensor delta = delta_memory.tensor({lse.numel()}, DType::F32);
  const int64_t tokens = shape.batch * shape.seq;
  const int64_t warps = tokens * shape.heads;
  delta_kernel<<<detail::blocks_for(warps * kWarp, 256), 256, 0, stream>>>(
      dout.data<float>(), out.data<float>(), delta.data<float>(), tokens, shape.seq,
      shape.heads, shape.v_dim);
  TRIDENT_CHECK_LAUNCH();
  dq_kernel<<<grid_of(shape), kThreads, floats(g.qk_dim + g.v_dim + kChunk), stream>>>(
      g, dout.data<float>(), q.data<float>(), k.data<float>(), v.data<float>(),
      lse.data<float>(), delta.data<float>(), dq.data<float>());
  TRIDENT_CHECK_LAUNCH();
  dkdv_kernel<<<grid_of(shape), kThreads, floats(g.qk_dim + g.v_dim + 2 * kChunk), stream>>>(
      g, dout.data<float>(), q.data<float>(), k.data<float>(), v.data<float>(),
      lse.data<float>(), delta.data<float>(), dk.data<float>(), dv.data<float>());
  TRIDENT_CHECK_LAUNCH();
}

}  // namespace trident::ops::cuda
