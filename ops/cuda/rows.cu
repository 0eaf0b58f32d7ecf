#include "ops/cuda/kernel_utils.h"
#include "ops/cuda/rows.h"

namespace trident::ops::cuda {
namespace {

constexpr int kThreads = 128;

// One block per output row. An index outside the source is left to the caller's checks on the
// CPU side of the plan; here it writes zeros rather than read out of bounds.
__global__ void gather_rows_kernel(const float* x, int64_t source_rows, const int32_t* index,
                                   int64_t width, float* out) {
  const int64_t r = blockIdx.x;
  const int64_t from = index[r];
  const bool valid = from >= 0 && from < source_rows;
  for (int64_t c = threadIdx.x; c < width; c += blockDim.x)
    out[r * width + c] = valid ? x[from * width + c] : 0.0f;
}

// One block per token: the weighted sum of its kept slots' rows, in slot order.
__global__ void combine_rows_kernel(const float* rows, const int32_t* slot_row, int64_t top_k,
                                    const float* weights, int64_t first_token, int64_t width,
                                    float* out) {
  const int64_t i = blockIdx.x;
  const int64_t t = first_token + i;
  for (int64_t c = threadIdx.x; c < width; c += blockDim.x) {
    float acc = 0.0f;
    for (int64_t j = 0; j < top_k; ++j) {
      const int64_t row = slot_row[i * top_k + j];
      if (row < 0) continue;
      const float weight = weights != nullptr ? weights[t * top_k + j] : 1.0f;
      acc += weight * rows[row * width + c];
    }
    out[t * width + c] = acc;
  }
}

// One block per slot: its weight's gradient (a dot product in double) and its row's gradient.
__global__ void combine_rows_backward_kernel(const float* dout, const float* rows,
                                             const float* weights, const int32_t* slot_row,
                                             int64_t top_k, int64_t first_token, int64_t width,
                                             float* d_rows, float* d_weights) {
  __shared__ double scratch[detail::kWarp];
  const int64_t s = blockIdx.x;  // slot within the chunk
  const int64_t t = first_token + s / top_k;
  const int64_t slot = t * top_k + s % top_k;
  const int64_t row = slot_row[s];
  if (row < 0) {  // the whole block leaves
    if (threadIdx.x == 0) d_weights[slot] = 0.0f;
    return;
  }
  const float* g = dout + t * width;
  const float* y = rows + row * width;
  double dot = 0.0;
  for (int64_t c = threadIdx.x; c < width; c += blockDim.x) {
    dot += static_cast<double>(g[c]) * y[c];
    d_rows[row * width + c] = weights[slot] * g[c];
  }
  dot = detail::block_sum(dot, scratch);
  if (threadIdx.x == 0) d_weights[slot] = static_cast<float>(dot);
}

void expect_matrix(const Tensor& t, int64_t width, const char* what) {
  detail::expect_dtype(t, DType::F32, what);
  TRIDENT_CHECK(t.dim() == 2 && t.size(1) == width, what, " must be [rows, ", width, "], got ",
                t.describe());
}

}  // namespace

void gather_rows(const Tensor& x, const Tensor& index, Tensor& out, cudaStream_t stream) {
  TRIDENT_CHECK(x.dim() == 2, "gather_rows x must be [rows, width], got ", x.describe());
  const int64_t width = x.size(1);
  expect_matrix(x, width, "gather_rows x");
  expect_matrix(out, width, "gather_rows out");
  detail::expect_dtype(index, DType::I32, "gather_rows index");
  detail::expect_numel(index, out.size(0), "gather_rows index");
  if (out.size(0) == 0 || width == 0) return;
  gather_rows_kernel<<<static_cast<unsigned>(out.size(0)), kThreads, 0, stream>>>(
      x.data<float>(), x.size(0), index.data<int32_t>(), width, out.data<float>());
  TRIDENT_CHECK_LAUNCH();
}

void combine_rows(const Tensor& rows, const Tensor& slot_row, int64_t top_k, const Tensor& weights,
                  int64_t first_token, Tensor& out, cudaStream_t stream) {
  TRIDENT_CHECK(out.dim() == 2, "combine_rows out must be [tokens, width], got ", out.describe());
  const int64_t width = out.size(1);
  expect_matrix(out, width, "combine_rows out");
  expect_matrix(rows, width, "combine_rows rows");
  detail::expect_dtype(slot_row, DType::I32, "combine_rows slot_row");
  TRIDENT_CHECK(top_k > 0 && slot_row.numel() % top_k == 0, "combine_rows slot_row ",
                slot_row.describe(), " is not whole tokens of ", top_k, " slots");
  const int64_t n = slot_row.numel() / top_k;
  TRIDENT_CHECK(first_token >= 0 && first_token + n <= out.size(0), "combine_rows: tokens [",
                first_token, ", ", first_token + n, ") outside ", out.describe());
  if (weights.defined()) {
    detail::expect_dtype(weights, DType::F32, "combine_rows weights");
    detail::expect_numel(weights, out.size(0) * top_k, "combine_rows weights");
  }
  if (n == 0 || width == 0) return;
  combine_rows_kernel<<<static_cast<unsigned>(n), kThreads, 0, stream>>>(
      rows.data<float>(), slot_row.data<int32_t>(), top_k,
      weights.defined() ? weights.data<float>() : nullptr, first_token, width, out.data<float>());
  TRIDENT_CHECK_LAUNCH();
}

void combine_rows_backward(const Tensor& dout, const Tensor& rows, const Tensor& weights,
                           const Tensor& slot_row, int64_t first_token, Tensor& d_rows,
                           Tensor& d_weights, cudaStream_t stream) {
  TRIDENT_CHECK(dout.dim() == 2, "combine_rows_backward dout must be [tokens, width], got ",
                dout.describe());
  const int64_t width = dout.size(1), tokens = dout.size(0);
  expect_matrix(dout, width, "combine_rows_backward dout");
  expect_matrix(rows, width, "combine_rows_backward rows");
  expect_matrix(d_rows, width, "combine_rows_backward d_rows");
  detail::expect_numel(d_rows, rows.numel(), "combine_rows_backward d_rows");
  detail::expect_dtype(weights, DType::F32, "combine_rows_backward weights");
  const int64_t top_k = weights.size(-1);
  detail::expect_numel(weights, tokens * top_k, "combine_rows_backward weights");
  detail::expect_dtype(d_weights, DType::F32, "combine_rows_backward d_weights");
  detail::expect_numel(d_weights, tokens * top_k, "combine_rows_backward d_weights");
  detail::expect_dtype(slot_row, DType::I32, "combine_rows_backward slot_row");
  TRIDENT_CHECK(top_k > 0 && slot_row.numel() % top_k == 0, "combine_rows_backward slot_row ",
                slot_row.describe(), " is not whole tokens of ", top_k, " slots");
  const int64_t slots = slot_row.numel();
  TRIDENT_CHECK(first_token >= 0 && first_token + slots / top_k <= tokens,
                "combine_rows_backward: tokens [", first_token, ", ", first_token + slots / top_k,
                ") outside ", dout.describe());
  if (slots == 0) return;
  combine_rows_backward_kernel<<<static_cast<unsigned>(slots), kThreads, 0, stream>>>(
      dout.data<float>(), rows.data<float>(), weights.data<float>(), slot_row.data<int32_t>(),
      top_k, first_token, width, d_rows.data<float>(), d_weights.data<float>());
  TRIDENT_CHECK_LAUNCH();
}

}  // namespace trident::ops::cuda
