// Rotary position embedding with YaRN scaling (interleaved pairs).
#include "runtime/core/profiler.h"
#include "ops/cpu/rope.h"

#include <algorithm>
#include <cmath>
#include <numbers>
#include <vector>

#include "ops/cpu/detail.h"

namespace trident::ops::cpu {
namespace {

// The (fractional) pair index whose wavelength completes `rotations` turns over the original
// context: d · ln(orig / (rotations · 2π)) / (2 ln base).
double correction_dim(double rotations, int64_t dim, double base, int64_t original_max) {
  return static_cast<double>(dim) *
         std::log(static_cast<double>(original_max) / (rotations * 2.0 * std::numbers::pi)) /
         (2.0 * std::log(base));
}

std::vector<double> inverse_frequencies(int64_t rotary_dim, const YarnSettings& yarn) {
  const int64_t pairs = rotary_dim / 2;
  std::vector<double> inv_freq(static_cast<size_t>(pairs));
  for (int64_t j = 0; j < pairs; ++j) {
    inv_freq[static_cast<size_t>(j)] =
        std::pow(yarn.theta, -2.0 * static_cast<double>(j) / static_cast<double>(rotary_dim));
  }
  if (yarn.factor <= 1.0) return inv_freq;
  const double low = std::max(std::floor(correction_dim(yarn.beta_fast, rotary_dim, yarn.theta,
                                                        yarn.original_max_position)),
                              0.0);
  double high = std::min(
      std::ceil(correction_dim(yarn.beta_slow, rotary_dim, yarn.theta, yarn.original_max_position)),
      static_cast<double>(rotary_dim - 1));
  if (high == low) high += 0.001;
  for (int64_t j = 0; j < pairs; ++j) {
    const double ramp = std::clamp((static_cast<double>(j) - low) / (high - low), 0.0, 1.0);
    const double extrapolated = inv_freq[static_cast<size_t>(j)];
    const double interpolated = extrapolated / yarn.factor;
    inv_freq[static_cast<size_t>(j)] = interpolated * ramp + extrapolated * (1.0 - ramp);
  }
  return inv_freq;
}

struct RopeDims {
  int64_t tokens = 0;
  int64_t heads = 0;
  int64_t pairs = 0;
};

RopeDims rope_dims(const Tensor& x, const Tensor& positions, const RopeTable& table,
                   const Tensor& y) {
  detail::check_f32(x, "rope input");
  detail::check_f32(y, "rope output");
  detail::check_i32(positions, "rope positions");
  TRIDENT_CHECK(x.dim() >= 2 && x.size(-1) == table.rotary_dim, "rope input ", x.describe(),
                " must be [T, (H,) ", table.rotary_dim, "]");
  RopeDims d;
  d.tokens = x.size(0);
  d.pairs = table.rotary_dim / 2;
  d.heads = d.tokens == 0 || table.rotary_dim == 0 ? 0 : x.numel() / (d.tokens * table.rotary_dim);
  detail::check_numel(positions, d.tokens, "rope positions");
  detail::check_numel(y, x.numel(), "rope output");
  const int32_t* pos = positions.data<int32_t>();
  for (int64_t t = 0; t < d.tokens; ++t) {
    TRIDENT_CHECK(pos[t] >= 0 && pos[t] < table.max_positions, "rope position ", pos[t],
                  " outside the table [0, ", table.max_positions, ")");
  }
  return d;
}

// Rotates every pair by ±θ; in place is fine since each pair is read before it is written.
void rotate(const Tensor& x, const Tensor& positions, const RopeTable& table, Tensor& y,
            float direction) {
  const RopeDims d = rope_dims(x, positions, table, y);
  const int32_t* pos = positions.data<int32_t>();
  const float* cos_table = table.cos.data<float>();
  const float* sin_table = table.sin.data<float>();
  const float* in = x.data<float>();
  float* out = y.data<float>();
  const int64_t row = d.heads * d.pairs * 2;
#pragma omp parallel for schedule(static) if (detail::worth_parallel(d.tokens * row))
  for (int64_t t = 0; t < d.tokens; ++t) {
    const float* c = cos_table + pos[t] * d.pairs;
    const float* s = sin_table + pos[t] * d.pairs;
    for (int64_t h = 0; h < d.heads; ++h) {
      const int64_t base = t * row + h * d.pairs * 2;
      for (int64_t j = 0; j < d.pairs; ++j) {
        const float a = in[base + 2 * j];
        const float b = in[base + 2 * j + 1];
        const float sine = direction * s[j];
        out[base + 2 * j] = a * c[j] - b * sine;
        out[base + 2 * j + 1] = a * sine + b * c[j];
      }
    }
  }
}

}  // namespace

RopeTable make_rope_table(int64_t rotary_dim, int64_t max_positions, const YarnSettings& yarn) {
  TRIDENT_PROFILE_SCOPE("make_rope_table");
  TRIDENT_USER_CHECK(rotary_dim > 0 && rotary_dim % 2 == 0,
                     "qk_rope_head_dim must be a positive even number, got ", rotary_dim);
  TRIDENT_USER_CHECK(max_positions > 0, "the rope table needs max_positions > 0, got ",
                     max_positions);
  TRIDENT_USER_CHECK(yarn.theta > 1.0, "rope_theta must be > 1, got ", yarn.theta);
  const std::vector<double> inv_freq = inverse_frequencies(rotary_dim, yarn);
  const double magnitude =
      yarn_mscale(yarn.factor, yarn.mscale) / yarn_mscale(yarn.factor, yarn.mscale_all_dim);
  const int64_t pairs = rotary_dim / 2;
  RopeTable table;
  table.rotary_dim = rotary_dim;
  table.max_positions = max_positions;
  table.cos = Tensor::empty({max_positions, pairs});
  table.sin = Tensor::empty({max_positions, pairs});
  float* c = table.cos.data<float>();
  float* s = table.sin.data<float>();
#pragma omp parallel for schedule(static)
  for (int64_t p = 0; p < max_positions; ++p) {
    for (int64_t j = 0; j < pairs; ++j) {
      const double angle = static_cast<double>(p) * inv_freq[static_cast<size_t>(j)];
      c[p * pairs + j] = static_cast<float>(std::cos(angle) * magnitude);
      s[p * pairs + j] = static_cast<float>(std::sin(angle) * magnitude);
    }
  }
  return table;
}

void rope_forward(const Tensor& x, const Tensor& positions, const RopeTable& table, Tensor& y) {
  TRIDENT_PROFILE_SCOPE("rope_forward");
  rotate(x, positions, table, y, 1.0f);
}

// The forward map is y = M·x with M = magnitude · R(θ); its transpose is magnitude · R(−θ).
void rope_backward(const Tensor& dy, const Tensor& positions, const RopeTable& table, Tensor& dx) {
  TRIDENT_PROFILE_SCOPE("rope_backward");
  rotate(dy, positions, table, dx, -1.0f);
}

}  // namespace trident::ops::cpu
