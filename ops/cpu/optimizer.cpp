#include "ops/cpu/optimizer.h"

#include <algorithm>
#include <atomic>
#include <cmath>

#include "ops/cpu/detail.h"
#include "ops/cpu/vector_math.h"
#include "runtime/core/error.h"

namespace trident::ops::cpu {

namespace {

inline float load(const float* p) { return *p; }
inline float load(const bf16* p) { return bf16_to_float(*p); }
inline void store(float* p, float value) { *p = value; }
inline void store(bf16* p, float value) { *p = float_to_bf16(value); }

// The update of elements [begin, end) in fp32 arithmetic whatever the moments are stored as;
// returns how many updated weights are NaN or infinite (counted in the same pass, so the
// finiteness check after an update reads nothing again).
template <typename Moment>
TRIDENT_ALWAYS_INLINE int64_t adamw_elements(const AdamWScalars& s, float* param, const float* grad,
                                             Moment* exp_avg, Moment* exp_avg_sq, int64_t begin,
                                             int64_t end) {
  int64_t nonfinite = 0;
#pragma omp simd reduction(+ : nonfinite)
  for (int64_t i = begin; i < end; ++i) {
    const float g = grad[i] * s.grad_scale;
    float p = param[i] * s.keep;
    const float m = s.beta1 * load(exp_avg + i) + (1.0f - s.beta1) * g;
    const float v = s.beta2 * load(exp_avg_sq + i) + (1.0f - s.beta2) * g * g;
    store(exp_avg + i, m);
    store(exp_avg_sq + i, v);
    p -= s.step_size * m / (std::sqrt(v) / s.bias2_sqrt + s.eps);
    param[i] = p;
    nonfinite += std::isfinite(p) ? 0 : 1;
  }
  return nonfinite;
}

TRIDENT_AVX2_CLONE int64_t adamw_range(const AdamWScalars& s, float* param, const float* grad,
                                       float* exp_avg, float* exp_avg_sq, int64_t begin,
                                       int64_t end) {
  return adamw_elements(s, param, grad, exp_avg, exp_avg_sq, begin, end);
}

TRIDENT_AVX2_CLONE int64_t adamw_range(const AdamWScalars& s, float* param, const float* grad,
                                       bf16* exp_avg, bf16* exp_avg_sq, int64_t begin,
                                       int64_t end) {
  return adamw_elements(s, param, grad, exp_avg, exp_avg_sq, begin, end);
}

template <typename Moment>
int64_t adamw_kernel(const AdamWScalars& s, float* param, const float* grad, Moment* exp_avg,
                     Moment* exp_avg_sq, int64_t count) {
  std::atomic<int64_t> nonfinite{0};
  detail::for_ranges(count, 4 * count, [&](int64_t begin, int64_t end) {
    nonfinite += adamw_range(s, param, grad, exp_avg, exp_avg_sq, begin, end);
  });
  return nonfinite.load();
}

// Σ x² of one block in vector_math.h's fixed order (eight interleaved partial sums in double).
TRIDENT_AVX2_CLONE double block_sum_of_squares(const float* values, int64_t count) {
  return detail::dot_f64(values, values, count);
}

// Σ x² of one piece in double. Blocks of 64K elements, each summed in vector_math.h's fixed
// order, added in block order: the order depends on `count` alone, and the blocks run in
// parallel while the partial sums vectorise.
double piece_sum_of_squares(const float* values, int64_t count) {
  constexpr int64_t kBlock = int64_t{1} << 16;
  const int64_t blocks = (count + kBlock - 1) / kBlock;
  std::vector<double> block_sums(static_cast<size_t>(blocks));
#pragma omp parallel for schedule(static) if (blocks > 1)
  for (int64_t b = 0; b < blocks; ++b) {
    block_sums[static_cast<size_t>(b)] =
        block_sum_of_squares(values + b * kBlock, std::min(kBlock, count - b * kBlock));
  }
  double total = 0.0;
  for (const double sum : block_sums) total += sum;
  return total;
}

// Counts rather than stopping at the first: a loop without an exit vectorises and splits over
// the threads.
TRIDENT_AVX2_CLONE int64_t range_nonfinite(const float* values, int64_t begin, int64_t end) {
  int64_t nonfinite = 0;
#pragma omp simd reduction(+ : nonfinite)
  for (int64_t i = begin; i < end; ++i) nonfinite += std::isfinite(values[i]) ? 0 : 1;
  return nonfinite;
}

int64_t piece_nonfinite(const float* values, int64_t count) {
  std::atomic<int64_t> nonfinite{0};
  detail::for_ranges(count, count, [&](int64_t begin, int64_t end) {
    nonfinite += range_nonfinite(values, begin, end);
  });
  return nonfinite.load();
}

}  // namespace

void adamw_update(const AdamWSettings& settings, const AdamWStep& step, Tensor& param,
                  const Tensor& grad, Tensor& exp_avg, Tensor& exp_avg_sq, Tensor* nonfinite) {
  TRIDENT_CHECK(step.step >= 1, "AdamW step counts from 1, got ", step.step);
  const int64_t n = param.numel();
  TRIDENT_CHECK(param.dtype() == DType::F32 && grad.dtype() == DType::F32 && grad.numel() == n,
                "adamw_update: param ", param.describe(), " and grad ", grad.describe(),
                " must be f32 of one element count");
  TRIDENT_CHECK(exp_avg.dtype() == exp_avg_sq.dtype() && exp_avg.numel() == n &&
                    exp_avg_sq.numel() == n &&
                    (exp_avg.dtype() == DType::F32 || exp_avg.dtype() == DType::BF16),
                "adamw_update: moments ", exp_avg.describe(), " and ", exp_avg_sq.describe(),
                " must both be f32 or both bf16, of ", n, " elements like ", param.describe());
  if (nonfinite != nullptr) {
    TRIDENT_CHECK(nonfinite->dtype() == DType::I64 && nonfinite->numel() == 1,
                  "adamw_update: the non-finite count must be i64[1], got ", nonfinite->describe());
  }
  const AdamWScalars s = adamw_scalars(settings, step);
  const int64_t bad = exp_avg.dtype() == DType::BF16
                          ? adamw_kernel(s, param.data<float>(), grad.data<float>(),
                                         exp_avg.data<bf16>(), exp_avg_sq.data<bf16>(), n)
                          : adamw_kernel(s, param.data<float>(), grad.data<float>(),
                                         exp_avg.data<float>(), exp_avg_sq.data<float>(), n);
  if (nonfinite != nullptr) nonfinite->data<int64_t>()[0] += bad;
}

double sum_of_squares(const std::vector<Tensor>& pieces) {
  double total = 0.0;
  for (const Tensor& piece : pieces) {
    if (piece.defined()) total += piece_sum_of_squares(piece.data<float>(), piece.numel());
  }
  return total;
}

std::vector<int64_t> count_nonfinite(const std::vector<Tensor>& pieces) {
  std::vector<int64_t> counts(pieces.size(), 0);
  for (size_t i = 0; i < pieces.size(); ++i) {
    if (pieces[i].defined())
      counts[i] = piece_nonfinite(pieces[i].data<float>(), pieces[i].numel());
  }
  return counts;
}

}  // namespace trident::ops::cpu
