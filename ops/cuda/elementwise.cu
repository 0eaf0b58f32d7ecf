#include "ops/cuda/elementwise.h"
#include "ops/cuda/kernel_utils.h"

namespace trident::ops::cuda {
namespace {

using detail::blocks_for;
using detail::load;

constexpr int kThreads = 256;

// ---- embedding ---------------------------------------------------------------------------

template <typename T>
__global__ void embedding_forward_kernel(const int32_t* ids, const T* table, float* out,
                                         int64_t dim) {
  const int64_t token = blockIdx.x;
  const int64_t row = ids[token];
  for (int64_t d = threadIdx.x; d < dim; d += blockDim.x)
    out[token * dim + d] = load(table, row * dim + d);
}

__global__ void embedding_backward_kernel(const int32_t* ids, const float* dout, float* dtable,
                                          int64_t dim) {
  const int64_t token = blockIdx.x;
  const int64_t row = ids[token];
  for (int64_t d = threadIdx.x; d < dim; d += blockDim.x)
    atomicAdd(dtable + row * dim + d, dout[token * dim + d]);
}

// ---- RMSNorm: one block per row ---------------------------------------------------------

template <typename W>
__global__ void rmsnorm_forward_kernel(const float* x, const W* w, float eps, float* y,
                                       float* rstd, int64_t dim) {
  __shared__ float scratch[detail::kWarp];
  const float* xr = x + blockIdx.x * dim;
  float squares = 0.0f;
  for (int64_t d = threadIdx.x; d < dim; d += blockDim.x) squares += xr[d] * xr[d];
  const float r = rsqrtf(detail::block_sum(squares, scratch) / static_cast<float>(dim) + eps);
  for (int64_t d = threadIdx.x; d < dim; d += blockDim.x)
    y[blockIdx.x * dim + d] = xr[d] * r * load(w, d);
  if (threadIdx.x == 0) rstd[blockIdx.x] = r;
}

// dx = r · (g − x · r² · mean(g · x)) with g = dy · w.
template <typename W>
__global__ void rmsnorm_backward_input_kernel(const float* dy, const float* x, const W* w,
                                              const float* rstd, float* dx, bool accumulate,
                                              int64_t dim) {
  __shared__ float scratch[detail::kWarp];
  const int64_t base = blockIdx.x * dim;
  float dot = 0.0f;
  for (int64_t d = threadIdx.x; d < dim; d += blockDim.x) dot += dy[base + d] * load(w, d) * x[base + d];
  const float mean_gx = detail::block_sum(dot, scratch) / static_cast<float>(dim);
  const float r = rstd[blockIdx.x];
  for (int64_t d = threadIdx.x; d < dim; d += blockDim.x) {
    const float g = dy[base + d] * load(w, d);
    const float value = r * (g - x[base + d] * r * r * mean_gx);
    dx[base + d] = accumulate ? dx[base + d] + value : value;
  }
}

// Columns across threads, rows split into chunks across blockIdx.y; partial sums meet in dw.
constexpr int64_t kRowsPerChunk = 64;

__global__ void rmsnorm_backward_weight_kernel(const float* dy, const float* x,
                                               const float* rstd, float* dw, int64_t rows,
                                               int64_t dim) {
  const int64_t d = blockIdx.x * int64_t{blockDim.x} + threadIdx.x;
  if (d >= dim) return;
  const int64_t begin = blockIdx.y * kRowsPerChunk;
  const int64_t end = min(begin + kRowsPerChunk, rows);
  float sum = 0.0f;
  for (int64_t t = begin; t < end; ++t) sum += dy[t * dim + d] * x[t * dim + d] * rstd[t];
  atomicAdd(dw + d, sum);
}

// ---- SwiGLU -------------------------------------------------------------------------------

__device__ __forceinline__ float sigmoid(float v) { return 1.0f / (1.0f + __expf(-v)); }

__global__ void swiglu_forward_kernel(const float* gate, const float* up, float* out, int64_t n) {
  for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < n;
       i += int64_t{gridDim.x} * blockDim.x) {
    const float g = gate[i];
    out[i] = g * sigmoid(g) * up[i];
  }
}

__global__ void swiglu_backward_kernel(const float* dout, const float* gate, const float* up,
                                       float* dgate, float* dup, int64_t n) {
  for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < n;
       i += int64_t{gridDim.x} * blockDim.x) {
    const float g = gate[i];
    const float s = sigmoid(g);
    const float silu = g * s;
    const float dsilu = s * (1.0f + g * (1.0f - s));
    const float d = dout[i];
    const float u = up[i];
    dgate[i] = d * u * dsilu;
    dup[i] = d * silu;
  }
}

// ---- BLAS-1 -------------------------------------------------------------------------------

__global__ void axpy_kernel(float alpha, const float* x, float* y, int64_t n) {
  for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < n;
       i += int64_t{gridDim.x} * blockDim.x)
    y[i] += alpha * x[i];
}

__global__ void scale_kernel(const float* x, float factor, float* y, int64_t n) {
  for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < n;
       i += int64_t{gridDim.x} * blockDim.x)
    y[i] = x[i] * factor;
}

// Calls launch(data) with `t`'s elements as const float* or const __nv_bfloat16*, so that one
// launch statement instantiates a kernel for both storage types of a weight.
template <typename Launch>
void with_float_or_bf16(const Tensor& t, Launch&& launch) {
  if (t.dtype() == DType::F32) {
    launch(t.data<float>());
  } else {
    launch(detail::bf16_ptr(t));
  }
}

// Rows of x [rows, dim] for RMSNorm with `per_feature` (the weight or its gradient) of dim
// elements; checks that x's last dimension is dim.
int64_t norm_rows(const Tensor& x, const Tensor& per_feature, const char* per_feature_name) {
  const int64_t dim = per_feature.numel();
  const int64_t last_dim = x.dim() == 0 ? 1 : x.size(-1);
  TRIDENT_CHECK(dim > 0 && last_dim == dim, "rmsnorm x ", x.describe(), " vs ", per_feature_name,
                " ", per_feature.describe());
  return x.numel() / dim;
}

}  // namespace

void embedding_forward(const Tensor& ids, const Tensor& table, Tensor& out, cudaStream_t stream) {
  detail::expect_dtype(ids, DType::I32, "embedding ids");
  detail::expect_float_or_bf16(table, "embedding table");
  detail::expect_dtype(out, DType::F32, "embedding output");
  TRIDENT_CHECK(table.dim() == 2, "embedding table must be [V, D], got ", table.describe());
  const int64_t tokens = ids.numel();
  const int64_t dim = table.size(1);
  detail::expect_numel(out, tokens * dim, "embedding output");
  if (tokens == 0) return;
  with_float_or_bf16(table, [&](auto weights) {
    embedding_forward_kernel<<<static_cast<unsigned>(tokens), kThreads, 0, stream>>>(
        ids.data<int32_t>(), weights, out.data<float>(), dim);
  });
  TRIDENT_CHECK_LAUNCH();
}

void embedding_backward_weight(const Tensor& ids, const Tensor& dout, Tensor& dtable,
                               cudaStream_t stream) {
  detail::expect_dtype(ids, DType::I32, "embedding ids");
  detail::expect_dtype(dout, DType::F32, "embedding dout");
  detail::expect_dtype(dtable, DType::F32, "embedding dtable");
  TRIDENT_CHECK(dtable.dim() == 2, "embedding dtable must be [V, D], got ", dtable.describe());
  const int64_t tokens = ids.numel();
  const int64_t dim = dtable.size(1);
  detail::expect_numel(dout, tokens * dim, "embedding dout");
  if (tokens == 0) return;
  embedding_backward_kernel<<<static_cast<unsigned>(tokens), kThreads, 0, stream>>>(
      ids.data<int32_t>(), dout.data<float>(), dtable.data<float>(), dim);
  TRIDENT_CHECK_LAUNCH();
}

void rmsnorm_forward(const Tensor& x, const Tensor& w, float eps, Tensor& y, Tensor& rstd,
                     cudaStream_t stream) {
  detail::expect_dtype(x, DType::F32, "rmsnorm x");
  detail::expect_float_or_bf16(w, "rmsnorm weight");
  detail::expect_dtype(y, DType::F32, "rmsnorm y");
  detail::expect_dtype(rstd, DType::F32, "rmsnorm rstd");
  const int64_t dim = w.numel();
  const int64_t rows = norm_rows(x, w, "weight");
  detail::expect_numel(y, x.numel(), "rmsnorm y");
  detail::expect_numel(rstd, rows, "rmsnorm rstd");
  if (rows == 0) return;
  with_float_or_bf16(w, [&](auto weights) {
    rmsnorm_forward_kernel<<<static_cast<unsigned>(rows), kThreads, 0, stream>>>(
        x.data<float>(), weights, eps, y.data<float>(), rstd.data<float>(), dim);
  });
  TRIDENT_CHECK_LAUNCH();
}

void rmsnorm_backward_input(const Tensor& dy, const Tensor& x, const Tensor& w, const Tensor& rstd,
                            Tensor& dx, bool accumulate, cudaStream_t stream) {
  detail::expect_dtype(dy, DType::F32, "rmsnorm dy");
  detail::expect_dtype(x, DType::F32, "rmsnorm x");
  detail::expect_float_or_bf16(w, "rmsnorm weight");
  detail::expect_dtype(rstd, DType::F32, "rmsnorm rstd");
  detail::expect_dtype(dx, DType::F32, "rmsnorm dx");
  const int64_t dim = w.numel();
  const int64_t rows = norm_rows(x, w, "weight");
  detail::expect_numel(dy, x.numel(), "rmsnorm dy");
  detail::expect_numel(dx, x.numel(), "rmsnorm dx");
  detail::expect_numel(rstd, rows, "rmsnorm rstd");
  if (rows == 0) return;
  with_float_or_bf16(w, [&](auto weights) {
    rmsnorm_backward_input_kernel<<<static_cast<unsigned>(rows), kThreads, 0, stream>>>(
        dy.data<float>(), x.data<float>(), weights, rstd.data<float>(), dx.data<float>(),
        accumulate, dim);
  });
  TRIDENT_CHECK_LAUNCH();
}

void rmsnorm_backward_weight(const Tensor& dy, const Tensor& x, const Tensor& rstd, Tensor& dw,
                             cudaStream_t stream) {
  detail::expect_dtype(dy, DType::F32, "rmsnorm dy");
  detail::expect_dtype(x, DType::F32, "rmsnorm x");
  detail::expect_dtype(rstd, DType::F32, "rmsnorm rstd");
  detail::expect_dtype(dw, DType::F32, "rmsnorm dw");
  const int64_t dim = dw.numel();
  const int64_t rows = norm_rows(x, dw, "dw");
  detail::expect_numel(dy, x.numel(), "rmsnorm dy");
  detail::expect_numel(rstd, rows, "rmsnorm rstd");
  if (rows == 0) return;
  const dim3 grid(blocks_for(dim, kThreads),
                  static_cast<unsigned>((rows + kRowsPerChunk - 1) / kRowsPerChunk));
  rmsnorm_backward_weight_kernel<<<grid, kThreads, 0, stream>>>(
      dy.data<float>(), x.data<float>(), rstd.data<float>(), dw.data<float>(), rows, dim);
  TRIDENT_CHECK_LAUNCH();
}

void swiglu_forward(const Tensor& gate, const Tensor& up, Tensor& out, cudaStream_t stream) {
  detail::expect_dtype(gate, DType::F32, "swiglu gate");
  detail::expect_dtype(up, DType::F32, "swiglu up");
  detail::expect_dtype(out, DType::F32, "swiglu out");
  const int64_t n = gate.numel();
  detail::expect_numel(up, n, "swiglu up");
  detail::expect_numel(out, n, "swiglu out");
  if (n == 0) return;
  swiglu_forward_kernel<<<blocks_for(n, kThreads), kThreads, 0, stream>>>(
      gate.data<float>(), up.data<float>(), out.data<float>(), n);
  TRIDENT_CHECK_LAUNCH();
}

void swiglu_backward(const Tensor& dout, const Tensor& gate, const Tensor& up, Tensor& dgate,
                     Tensor& dup, cudaStream_t stream) {
  detail::expect_dtype(dout, DType::F32, "swiglu dout");
  detail::expect_dtype(gate, DType::F32, "swiglu gate");
  detail::expect_dtype(up, DType::F32, "swiglu up");
  detail::expect_dtype(dgate, DType::F32, "swiglu dgate");
  detail::expect_dtype(dup, DType::F32, "swiglu dup");
  const int64_t n = gate.numel();
  detail::expect_numel(dout, n, "swiglu dout");
  detail::expect_numel(up, n, "swiglu up");
  detail::expect_numel(dgate, n, "swiglu dgate");
  detail::expect_numel(dup, n, "swiglu dup");
  if (n == 0) return;
  swiglu_backward_kernel<<<blocks_for(n, kThreads), kThreads, 0, stream>>>(
      dout.data<float>(), gate.data<float>(), up.data<float>(), dgate.data<float>(),
      dup.data<float>(), n);
  TRIDENT_CHECK_LAUNCH();
}

void axpy(float alpha, const Tensor& x, Tensor& y, cudaStream_t stream) {
  detail::expect_dtype(x, DType::F32, "axpy x");
  detail::expect_dtype(y, DType::F32, "axpy y");
  detail::expect_numel(y, x.numel(), "axpy y");
  if (x.numel() == 0) return;
  axpy_kernel<<<blocks_for(x.numel(), kThreads), kThreads, 0, stream>>>(
      alpha, x.data<float>(), y.data<float>(), x.numel());
  TRIDENT_CHECK_LAUNCH();
}

void scale(const Tensor& x, float factor, Tensor& y, cudaStream_t stream) {
  detail::expect_dtype(x, DType::F32, "scale x");
  detail::expect_dtype(y, DType::F32, "scale y");
  detail::expect_numel(y, x.numel(), "scale y");
  if (x.numel() == 0) return;
  scale_kernel<<<blocks_for(x.numel(), kThreads), kThreads, 0, stream>>>(
      x.data<float>(), factor, y.data<float>(), x.numel());
  TRIDENT_CHECK_LAUNCH();
}

}  // namespace trident::ops::cuda
