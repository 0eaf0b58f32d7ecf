// RMSNorm over the last dimension, forward and the two backward halves.
#include <algorithm>
#include <cmath>

#include "ops/cpu/detail.h"
#include "ops/cpu/elementwise.h"
#include "ops/cpu/vector_math.h"
#include "runtime/core/profiler.h"

namespace trident::ops::cpu {
namespace {

struct NormDims {
  int64_t rows = 0;
  int64_t dim = 0;
};

NormDims norm_dims(const Tensor& x, const Tensor& rstd) {
  detail::check_f32(x, "rmsnorm x");
  detail::check_f32(rstd, "rmsnorm rstd");
  NormDims d{detail::rows(x), detail::cols(x)};
  detail::check_numel(rstd, d.rows, "rmsnorm rstd");
  return d;
}

TRIDENT_AVX2_CLONE void rmsnorm_forward_rows(const float* in, const float* g, float eps,
                                             int64_t dim, float* out, float* r, int64_t begin,
                                             int64_t end) {
  for (int64_t t = begin; t < end; ++t) {
    const float* row = in + t * dim;
    const double sum = detail::dot_f64(row, row, dim);
    const float inv = static_cast<float>(1.0 / std::sqrt(sum / static_cast<double>(dim) + eps));
    r[t] = inv;
    float* dst = out + t * dim;
#pragma omp simd
    for (int64_t c = 0; c < dim; ++c) dst[c] = row[c] * inv * g[c];
  }
}

// dx = r·g − x · r³ · <g, x> / D with g = dy ⊙ w, added to dx when `accumulate`.
TRIDENT_AVX2_CLONE void rmsnorm_backward_input_rows(const float* in, const float* grad,
                                                    const float* g, const float* r, int64_t dim,
                                                    bool accumulate, float* out, int64_t begin,
                                                    int64_t end) {
  for (int64_t t = begin; t < end; ++t) {
    const float* xr = in + t * dim;
    const float* gr = grad + t * dim;
    const double dot =
        detail::lane_sum(dim, [&](int64_t c) { return static_cast<double>(gr[c]) * g[c] * xr[c]; });
    const float inv = r[t];
    const float coef = static_cast<float>(dot / static_cast<double>(dim)) * inv * inv * inv;
    float* dst = out + t * dim;
    if (accumulate) {
#pragma omp simd
      for (int64_t c = 0; c < dim; ++c) dst[c] += inv * gr[c] * g[c] - xr[c] * coef;
    } else {
#pragma omp simd
      for (int64_t c = 0; c < dim; ++c) dst[c] = inv * gr[c] * g[c] - xr[c] * coef;
    }
  }
}

// dw[c] += Σ_t dy[t, c] · x[t, c] · r[t] for the columns [begin, end), summed in double down
// the rows in order (so the same bits at any thread count and on AVX2 and baseline builds). A
// function of its own so that the column loop is compiled for AVX2 too.
TRIDENT_AVX2_CLONE void rmsnorm_backward_weight_columns(const float* in, const float* grad,
                                                        const float* r, int64_t rows, int64_t dim,
                                                        float* out, int64_t begin, int64_t end) {
  double sum[detail::kColumnBlock] = {};
  const int64_t width = end - begin;
  for (int64_t t = 0; t < rows; ++t) {
    const float* xr = in + t * dim + begin;
    const float* gr = grad + t * dim + begin;
    const double inv = r[t];
#pragma omp simd
    for (int64_t c = 0; c < width; ++c) sum[c] += static_cast<double>(gr[c]) * xr[c] * inv;
  }
  for (int64_t c = 0; c < width; ++c) out[begin + c] += static_cast<float>(sum[c]);
}

}  // namespace

void rmsnorm_forward(const Tensor& x, const Tensor& w, float eps, Tensor& y, Tensor& rstd) {
  TRIDENT_PROFILE_SCOPE("rmsnorm_forward");
  const NormDims d = norm_dims(x, rstd);
  detail::check_f32(y, "rmsnorm y");
  detail::check_numel(y, x.numel(), "rmsnorm y");
  detail::check_numel(w, d.dim, "rmsnorm w");
  const detail::Fp32Values weight(w, "rmsnorm w");
  const float* in = x.data<float>();
  const float* g = weight.data();
  float* out = y.data<float>();
  float* r = rstd.data<float>();
  detail::for_ranges(d.rows, d.rows * d.dim, [&](int64_t begin, int64_t end) {
    rmsnorm_forward_rows(in, g, eps, d.dim, out, r, begin, end);
  });
}

// y = x·r·w with r = (mean(x²) + eps)^(-1/2), so with g = dy ⊙ w:
// dx = r·g − x · r³ · <g, x> / D.
void rmsnorm_backward_input(const Tensor& dy, const Tensor& x, const Tensor& w, const Tensor& rstd,
                            Tensor& dx, bool accumulate) {
  TRIDENT_PROFILE_SCOPE("rmsnorm_backward_input");
  const NormDims d = norm_dims(x, rstd);
  detail::check_f32(dy, "rmsnorm dy");
  detail::check_f32(dx, "rmsnorm dx");
  detail::check_numel(dy, x.numel(), "rmsnorm dy");
  detail::check_numel(dx, x.numel(), "rmsnorm dx");
  detail::check_numel(w, d.dim, "rmsnorm w");
  const detail::Fp32Values weight(w, "rmsnorm w");
  const float* in = x.data<float>();
  const float* grad = dy.data<float>();
  const float* g = weight.data();
  const float* r = rstd.data<float>();
  float* out = dx.data<float>();
  detail::for_ranges(d.rows, d.rows * d.dim, [&](int64_t begin, int64_t end) {
    rmsnorm_backward_input_rows(in, grad, g, r, d.dim, accumulate, out, begin, end);
  });
}

void rmsnorm_backward_weight(const Tensor& dy, const Tensor& x, const Tensor& rstd, Tensor& dw) {
  TRIDENT_PROFILE_SCOPE("rmsnorm_backward_weight");
  const NormDims d = norm_dims(x, rstd);
  detail::check_f32(dy, "rmsnorm dy");
  detail::check_f32(dw, "rmsnorm dw");
  detail::check_numel(dy, x.numel(), "rmsnorm dy");
  detail::check_numel(dw, d.dim, "rmsnorm dw");
  const float* in = x.data<float>();
  const float* grad = dy.data<float>();
  const float* r = rstd.data<float>();
  float* out = dw.data<float>();
  detail::for_column_blocks(d.dim, d.rows * d.dim, [&](int64_t begin, int64_t end) {
    rmsnorm_backward_weight_columns(in, grad, r, d.rows, d.dim, out, begin, end);
  });
}

}  // namespace trident::ops::cpu
