#include <initializer_list>

#include "ops/cuda/elementwise.h"
#include "ops/cuda/kernel_utils.h"
#include "ops/types.h"

namespace trident::ops::cuda {
namespace {

using detail::blocks_for;
using detail::load;

constexpr int kThreads = 256;

// ---- embedding ---------------------------------------------------------------------------

// The table row of an id: the id itself for a whole table (shard_begin < 0), else its row in
// the shard [shard_begin, shard_begin + vocab), or −1 for another shard's id.
__device__ int64_t embedding_row(int32_t id, int64_t shard_begin, int64_t vocab) {
  if (shard_begin < 0) return id;
  const int64_t local = static_cast<int64_t>(id) - shard_begin;
  return local >= 0 && local < vocab ? local : -1;
}

template <typename T>
__global__ void embedding_forward_kernel(const int32_t* ids, const T* table, float* out,
                                         int64_t dim, int64_t shard_begin, int64_t vocab) {
  const int64_t token = blockIdx.x;
  const int64_t row = embedding_row(ids[token], shard_begin, vocab);
  for (int64_t d = threadIdx.x; d < dim; d += blockDim.x)
    out[token * dim + d] = row < 0 ? 0.0f : load(table, row * dim + d);
}

__global__ void embedding_backward_kernel(const int32_t* ids, const float* dout, float* dtable,
                                          int64_t dim, int64_t shard_begin, int64_t vocab) {
  const int64_t token = blockIdx.x;
  const int64_t row = embedding_row(ids[token], shard_begin, vocab);
  if (row < 0) return;
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

// One thread per copied element: dst[r · dst_width + c] (+)= src[r · src_width + c], both pointers
// already at their first column.
__global__ void copy_columns_kernel(const float* src, int64_t src_width, float* dst,
                                    int64_t dst_width, int64_t rows, int64_t count,
                                    bool accumulate) {
  const int64_t n = rows * count;
  for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < n;
       i += int64_t{gridDim.x} * blockDim.x) {
    const int64_t r = i / count, c = i % count;
    const float value = src[r * src_width + c];
    float& out = dst[r * dst_width + c];
    out = accumulate ? out + value : value;
  }
}

__global__ void scale_kernel(const float* x, float factor, float* y, int64_t n) {
  for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < n;
       i += int64_t{gridDim.x} * blockDim.x)
    y[i] = x[i] * factor;
}

__global__ void round_to_bf16_kernel(float* x, int64_t n) {
  for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < n;
       i += int64_t{gridDim.x} * blockDim.x)
    x[i] = __bfloat162float(__float2bfloat16_rn(x[i]));
}

__global__ void f32_to_bf16_kernel(const float* in, __nv_bfloat16* out, int64_t n) {
  for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < n;
       i += int64_t{gridDim.x} * blockDim.x)
    out[i] = __float2bfloat16_rn(in[i]);
}

__global__ void bf16_to_f32_kernel(const __nv_bfloat16* in, float* out, int64_t n) {
  for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < n;
       i += int64_t{gridDim.x} * blockDim.x)
    out[i] = __bfloat162float(in[i]);
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

struct EmbeddingDims {
  int64_t tokens = 0;
  int64_t dim = 0;
};

// ids [T] (i32), `table` [V, D] (the table or its gradient) and the f32 `rows` [T, D] that the
// lookup writes or its backward reads.
EmbeddingDims embedding_dims(const Tensor& ids, const Tensor& table, const char* table_name,
                             const Tensor& rows, const char* rows_name) {
  detail::expect_dtype(ids, DType::I32, "embedding ids");
  detail::expect_dtype(rows, DType::F32, rows_name);
  TRIDENT_CHECK(table.dim() == 2, table_name, " must be [V, D], got ", table.describe());
  const EmbeddingDims d{ids.numel(), table.size(1)};
  detail::expect_numel(rows, d.tokens * d.dim, rows_name);
  return d;
}

// The operands of an element-wise op: each an f32 CUDA tensor (all checked first, in order), then
// each with as many elements as `size_of`. Returns that element count.
int64_t f32_elements(const Tensor& size_of, std::initializer_list<detail::Operand> operands) {
  for (const detail::Operand& o : operands) detail::expect_dtype(o.tensor, DType::F32, o.name);
  const int64_t n = size_of.numel();
  for (const detail::Operand& o : operands) detail::expect_numel(o.tensor, n, o.name);
  return n;
}

// Rows of x [rows, dim] for RMSNorm with `per_feature` (the weight or its gradient) of dim
// elements; checks that x's last dimension is dim, and x and the per-row rstd [rows] that the
// forward pass saves and both backward passes read.
int64_t norm_rows(const Tensor& x, const Tensor& per_feature, const char* per_feature_name,
                  const Tensor& rstd) {
  detail::expect_dtype(x, DType::F32, "rmsnorm x");
  detail::expect_dtype(rstd, DType::F32, "rmsnorm rstd");
  const int64_t dim = per_feature.numel();
  const int64_t last_dim = x.dim() == 0 ? 1 : x.size(-1);
  TRIDENT_CHECK(dim > 0 && last_dim == dim, "rmsnorm x ", x.describe(), " vs ", per_feature_name,
                " ", per_feature.describe());
  const int64_t rows = x.numel() / dim;
  detail::expect_numel(rstd, rows, "rmsnorm rstd");
  return rows;
}

}  // namespace

void embedding_forward(const Tensor& ids, const Tensor& table, Tensor& out, int64_t shard_begin,
                       cudaStream_t stream) {
  detail::expect_float_or_bf16(table, "embedding table");
  const EmbeddingDims d = embedding_dims(ids, table, "embedding table", out, "embedding output");
  if (d.tokens == 0) return;
  with_float_or_bf16(table, [&](auto weights) {
    embedding_forward_kernel<<<static_cast<unsigned>(d.tokens), kThreads, 0, stream>>>(
        ids.data<int32_t>(), weights, out.data<float>(), d.dim, shard_begin, table.size(0));
  });
  TRIDENT_CHECK_LAUNCH();
}

void embedding_backward_weight(const Tensor& ids, const Tensor& dout, Tensor& dtable,
                               int64_t shard_begin, cudaStream_t stream) {
  detail::expect_dtype(dtable, DType::F32, "embedding dtable");
  const EmbeddingDims d = embedding_dims(ids, dtable, "embedding dtable", dout, "embedding dout");
  if (d.tokens == 0) return;
  embedding_backward_kernel<<<static_cast<unsigned>(d.tokens), kThreads, 0, stream>>>(
      ids.data<int32_t>(), dout.data<float>(), dtable.data<float>(), d.dim, shard_begin,
      dtable.size(0));
  TRIDENT_CHECK_LAUNCH();
}

void rmsnorm_forward(const Tensor& x, const Tensor& w, float eps, Tensor& y, Tensor& rstd,
                     cudaStream_t stream) {
  detail::expect_float_or_bf16(w, "rmsnorm weight");
  const int64_t rows = norm_rows(x, w, "weight", rstd);
  const int64_t dim = w.numel();
  f32_elements(x, {{y, "rmsnorm y"}});
  if (rows == 0) return;
  with_float_or_bf16(w, [&](auto weights) {
    rmsnorm_forward_kernel<<<static_cast<unsigned>(rows), kThreads, 0, stream>>>(
        x.data<float>(), weights, eps, y.data<float>(), rstd.data<float>(), dim);
  });
  TRIDENT_CHECK_LAUNCH();
}

void rmsnorm_backward_input(const Tensor& dy, const Tensor& x, const Tensor& w, const Tensor& rstd,
                            Tensor& dx, bool accumulate, cudaStream_t stream) {
  detail::expect_float_or_bf16(w, "rmsnorm weight");
  const int64_t rows = norm_rows(x, w, "weight", rstd);
  const int64_t dim = w.numel();
  f32_elements(x, {{dy, "rmsnorm dy"}, {dx, "rmsnorm dx"}});
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
  detail::expect_dtype(dw, DType::F32, "rmsnorm dw");
  const int64_t rows = norm_rows(x, dw, "dw", rstd);
  const int64_t dim = dw.numel();
  f32_elements(x, {{dy, "rmsnorm dy"}});
  if (rows == 0) return;
  const dim3 grid(blocks_for(dim, kThreads),
                  static_cast<unsigned>((rows + kRowsPerChunk - 1) / kRowsPerChunk));
  rmsnorm_backward_weight_kernel<<<grid, kThreads, 0, stream>>>(
      dy.data<float>(), x.data<float>(), rstd.data<float>(), dw.data<float>(), rows, dim);
  TRIDENT_CHECK_LAUNCH();
}

void swiglu_forward(const Tensor& gate, const Tensor& up, Tensor& out, cudaStream_t stream) {
  const int64_t n =
      f32_elements(gate, {{gate, "swiglu gate"}, {up, "swiglu up"}, {out, "swiglu out"}});
  if (n == 0) return;
  swiglu_forward_kernel<<<blocks_for(n, kThreads), kThreads, 0, stream>>>(
      gate.data<float>(), up.data<float>(), out.data<float>(), n);
  TRIDENT_CHECK_LAUNCH();
}

void swiglu_backward(const Tensor& dout, const Tensor& gate, const Tensor& up, Tensor& dgate,
                     Tensor& dup, cudaStream_t stream) {
  const int64_t n = f32_elements(gate, {{dout, "swiglu dout"},
                                        {gate, "swiglu gate"},
                                        {up, "swiglu up"},
                                        {dgate, "swiglu dgate"},
                                        {dup, "swiglu dup"}});
  if (n == 0) return;
  swiglu_backward_kernel<<<blocks_for(n, kThreads), kThreads, 0, stream>>>(
      dout.data<float>(), gate.data<float>(), up.data<float>(), dgate.data<float>(),
      dup.data<float>(), n);
  TRIDENT_CHECK_LAUNCH();
}

void axpy(float alpha, const Tensor& x, Tensor& y, cudaStream_t stream) {
  const int64_t n = f32_elements(x, {{x, "axpy x"}, {y, "axpy y"}});
  if (n == 0) return;
  axpy_kernel<<<blocks_for(n, kThreads), kThreads, 0, stream>>>(alpha, x.data<float>(),
                                                                y.data<float>(), n);
  TRIDENT_CHECK_LAUNCH();
}

void copy_columns(const Tensor& src, int64_t src_width, int64_t src_begin, Tensor& dst,
                  int64_t dst_width, int64_t dst_begin, int64_t count, bool accumulate,
                  cudaStream_t stream) {
  detail::expect_dtype(src, DType::F32, "copy_columns src");
  detail::expect_dtype(dst, DType::F32, "copy_columns dst");
  const int64_t rows =
      column_copy_rows(src, src_width, src_begin, dst, dst_width, dst_begin, count);
  const int64_t n = rows * count;
  if (n == 0) return;
  copy_columns_kernel<<<blocks_for(n, kThreads), kThreads, 0, stream>>>(
      src.data<float>() + src_begin, src_width, dst.data<float>() + dst_begin, dst_width, rows,
      count, accumulate);
  TRIDENT_CHECK_LAUNCH();
}

void scale(const Tensor& x, float factor, Tensor& y, cudaStream_t stream) {
  const int64_t n = f32_elements(x, {{x, "scale x"}, {y, "scale y"}});
  if (n == 0) return;
  scale_kernel<<<blocks_for(n, kThreads), kThreads, 0, stream>>>(x.data<float>(), factor,
                                                                 y.data<float>(), n);
  TRIDENT_CHECK_LAUNCH();
}

void round_to_bf16(Tensor& x, cudaStream_t stream) {
  const int64_t n = f32_elements(x, {{x, "round_to_bf16 x"}});
  if (n == 0) return;
  round_to_bf16_kernel<<<blocks_for(n, kThreads), kThreads, 0, stream>>>(x.data<float>(), n);
  TRIDENT_CHECK_LAUNCH();
}

void convert(const Tensor& src, Tensor& dst, cudaStream_t stream) {
  detail::expect_float_or_bf16(src, "convert src");
  detail::expect_float_or_bf16(dst, "convert dst");
  detail::expect_numel(dst, src.numel(), "convert dst");
  const int64_t n = src.numel();
  if (n == 0) return;
  if (src.dtype() == dst.dtype()) {
    TRIDENT_CHECK_CUDA(cudaMemcpyAsync(dst.raw_data(), src.raw_data(), src.nbytes(),
                                       cudaMemcpyDeviceToDevice, stream));
  } else if (dst.dtype() == DType::BF16) {
    f32_to_bf16_kernel<<<blocks_for(n, kThreads), kThreads, 0, stream>>>(src.data<float>(),
                                                                         detail::bf16_mut(dst), n);
    TRIDENT_CHECK_LAUNCH();
  } else {
    bf16_to_f32_kernel<<<blocks_for(n, kThreads), kThreads, 0, stream>>>(detail::bf16_ptr(src),
                                                                         dst.data<float>(), n);
    TRIDENT_CHECK_LAUNCH();
  }
}

}  // namespace trident::ops::cuda
