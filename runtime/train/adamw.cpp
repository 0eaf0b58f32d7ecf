#include "runtime/train/adamw.h"

#include <algorithm>
#include <cmath>
#include <vector>

namespace trident::train {

namespace {

inline float load(const float* p) { return *p; }
inline float load(const bf16* p) { return bf16_to_float(*p); }
inline void store(float* p, float value) { *p = value; }
inline void store(bf16* p, float value) { *p = float_to_bf16(value); }

// The update in fp32 arithmetic whatever the moments are stored as.
template <typename Moment>
void adamw_kernel(float* param, const float* grad, Moment* exp_avg, Moment* exp_avg_sq,
                  int64_t count, const AdamWSettings& settings, double lr, int64_t step, bool decay,
                  float grad_scale) {
  TRIDENT_CHECK(step >= 1, "AdamW step counts from 1, got ", step);
  const float beta1 = static_cast<float>(settings.beta1);
  const float beta2 = static_cast<float>(settings.beta2);
  const double bias1 = 1.0 - std::pow(settings.beta1, static_cast<double>(step));
  const double bias2 = 1.0 - std::pow(settings.beta2, static_cast<double>(step));
  const float step_size = static_cast<float>(lr / bias1);
  const float bias2_sqrt = static_cast<float>(std::sqrt(bias2));
  const float eps = static_cast<float>(settings.eps);
  const float keep = decay ? static_cast<float>(1.0 - lr * settings.weight_decay) : 1.0f;
#pragma omp parallel for schedule(static) if (count > 16384)
  for (int64_t i = 0; i < count; ++i) {
    const float g = grad[i] * grad_scale;
    float p = param[i] * keep;
    const float m = beta1 * load(exp_avg + i) + (1.0f - beta1) * g;
    const float v = beta2 * load(exp_avg_sq + i) + (1.0f - beta2) * g * g;
    store(exp_avg + i, m);
    store(exp_avg_sq + i, v);
    p -= step_size * m / (std::sqrt(v) / bias2_sqrt + eps);
    param[i] = p;
  }
}

}  // namespace

void adamw_update(float* param, const float* grad, float* exp_avg, float* exp_avg_sq, int64_t count,
                  const AdamWSettings& settings, double lr, int64_t step, bool decay,
                  float grad_scale) {
  adamw_kernel(param, grad, exp_avg, exp_avg_sq, count, settings, lr, step, decay, grad_scale);
}

void adamw_update(float* param, const float* grad, Tensor& exp_avg, Tensor& exp_avg_sq,
                  int64_t offset, int64_t count, const AdamWSettings& settings, double lr,
                  int64_t step, bool decay, float grad_scale) {
  TRIDENT_CHECK(exp_avg.dtype() == exp_avg_sq.dtype() && offset >= 0 &&
                    offset + count <= exp_avg.numel() && exp_avg.numel() == exp_avg_sq.numel(),
                "AdamW moments ", exp_avg.describe(), " and ", exp_avg_sq.describe(),
                " do not hold elements [", offset, ", ", offset + count, ")");
  if (exp_avg.dtype() == DType::BF16) {
    adamw_kernel(param, grad, exp_avg.data<bf16>() + offset, exp_avg_sq.data<bf16>() + offset,
                 count, settings, lr, step, decay, grad_scale);
  } else {
    adamw_kernel(param, grad, exp_avg.data<float>() + offset, exp_avg_sq.data<float>() + offset,
                 count, settings, lr, step, decay, grad_scale);
  }
}

AdamWState make_adamw_state(int64_t numel) {
  return AdamWState{Tensor::zeros({numel}), Tensor::zeros({numel})};
}

double sum_of_squares(const float* values, int64_t count) {
  constexpr int64_t kBlock = int64_t{1} << 16;
  constexpr int kLanes = 8;
  const int64_t blocks = (count + kBlock - 1) / kBlock;
  std::vector<double> block_sums(static_cast<size_t>(blocks));
#pragma omp parallel for schedule(static) if (blocks > 1)
  for (int64_t b = 0; b < blocks; ++b) {
    const float* v = values + b * kBlock;
    const int64_t n = std::min(kBlock, count - b * kBlock);
    double lanes[kLanes] = {};
    int64_t i = 0;
    for (; i + kLanes <= n; i += kLanes) {
      for (int l = 0; l < kLanes; ++l) {
        lanes[l] += static_cast<double>(v[i + l]) * static_cast<double>(v[i + l]);
      }
    }
    for (; i < n; ++i) lanes[0] += static_cast<double>(v[i]) * static_cast<double>(v[i]);
    double sum = 0.0;
    for (const double lane : lanes) sum += lane;
    block_sums[static_cast<size_t>(b)] = sum;
  }
  double total = 0.0;
  for (const double sum : block_sums) total += sum;
  return total;
}

double sum_of_squares(const Tensor& grad) {
  return sum_of_squares(grad.data<float>(), grad.numel());
}

double clip_coefficient(double global_norm, double max_norm) {
  if (max_norm <= 0.0) return 1.0;
  return std::min(1.0, max_norm / (global_norm + 1e-6));
}

}  // namespace trident::train
