#include "ops/cpu/optimizer.h"

#include <algorithm>
#include <cmath>

#include "ops/cpu/vector_math.h"
#include "runtime/core/error.h"

namespace trident::ops::cpu {

namespace {

inline float load(const float* p) { return *p; }
inline float load(const bf16* p) { return bf16_to_float(*p); }
inline void store(float* p, float value) { *p = value; }
inline void store(bf16* p, float value) { *p = float_to_bf16(value); }

// The update in fp32 arithmetic whatever the moments are stored as.
template <typename Moment>
void adamw_kernel(const AdamWScalars& s, float* param, const float* grad, Moment* exp_avg,
                  Moment* exp_avg_sq, int64_t count) {
#pragma omp parallel for schedule(static) if (count > 16384)
  for (int64_t i = 0; i < count; ++i) {
    const float g = grad[i] * s.grad_scale;
    float p = param[i] * s.keep;
    const float m = s.beta1 * load(exp_avg + i) + (1.0f - s.beta1) * g;
    const float v = s.beta2 * load(exp_avg_sq + i) + (1.0f - s.beta2) * g * g;
    store(exp_avg + i, m);
    store(exp_avg_sq + i, v);
    p -= s.step_size * m / (std::sqrt(v) / s.bias2_sqrt + s.eps);
    param[i] = p;
  }
}

// Σ x² of one piece in double. Blocks of 64K elements, each summed in vector_math.h's fixed
// order (eight interleaved partial sums), added in block order: the order depends on `count`
// alone, and the blocks run in parallel while the partial sums vectorise.
double piece_sum_of_squares(const float* values, int64_t count) {
  constexpr int64_t kBlock = int64_t{1} << 16;
  const int64_t blocks = (count + kBlock - 1) / kBlock;
  std::vector<double> block_sums(static_cast<size_t>(blocks));
#pragma omp parallel for schedule(static) if (blocks > 1)
  for (int64_t b = 0; b < blocks; ++b) {
    const float* v = values + b * kBlock;
    block_sums[static_cast<size_t>(b)] = detail::dot_f64(v, v, std::min(kBlock, count - b * kBlock));
  }
  double total = 0.0;
  for (const double sum : block_sums) total += sum;
  return total;
}

// Counts rather than stopping at the first: a loop without an exit vectorises and splits over
// the threads.
int64_t piece_nonfinite(const float* values, int64_t count) {
  int64_t nonfinite = 0;
#pragma omp parallel for reduction(+ : nonfinite) schedule(static) if (count > 65536)
  for (int64_t i = 0; i < count; ++i) nonfinite += std::isfinite(values[i]) ? 0 : 1;
  return nonfinite;
}

}  // namespace

void adamw_update(const AdamWSettings& settings, const AdamWStep& step, Tensor& param,
                  const Tensor& grad, Tensor& exp_avg, Tensor& exp_avg_sq) {
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
  const AdamWScalars s = adamw_scalars(settings, step);
  if (exp_avg.dtype() == DType::BF16) {
    adamw_kernel(s, param.data<float>(), grad.data<float>(), exp_avg.data<bf16>(),
                 exp_avg_sq.data<bf16>(), n);
  } else {
    adamw_kernel(s, param.data<float>(), grad.data<float>(), exp_avg.data<float>(),
                 exp_avg_sq.data<float>(), n);
  }
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
