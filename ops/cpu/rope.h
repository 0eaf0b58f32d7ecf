#pragma once
// Rotary position embedding with YaRN frequency scaling, DeepSeek-V3 style: adjacent
// (interleaved) pairs (x[2i], x[2i+1]) are rotated by angle pos · inv_freq[i].
#include "runtime/core/tensor.h"

namespace trident::ops::cpu {

struct YarnSettings {
  double theta = 10000.0;
  double factor = 1.0;                 // 1 = plain RoPE
  int64_t original_max_position = 4096;
  double beta_fast = 32.0;
  double beta_slow = 1.0;
  double mscale = 1.0;
  double mscale_all_dim = 0.0;
};

struct RopeTable {
  int64_t rotary_dim = 0;  // even; pairs = rotary_dim / 2
  int64_t max_positions = 0;
  Tensor cos;              // [max_positions, rotary_dim / 2], already times the YaRN mscale ratio
  Tensor sin;
};

// YaRN: inv_freq blends interpolated and extrapolated frequencies with a linear ramp between
// the correction dims for beta_fast/beta_slow; cos/sin carry mscale(factor, mscale) /
// mscale(factor, mscale_all_dim) as in the reference implementation.
RopeTable make_rope_table(int64_t rotary_dim, int64_t max_positions, const YarnSettings& yarn);
// yarn_get_mscale: 0.1 · m · ln(scale) + 1 for scale > 1, else 1.
double yarn_mscale(double scale, double m);

// x [T, H, R] (R = rotary_dim; H may be 1), positions [T] (I32). y may alias x.
void rope_forward(const Tensor& x, const Tensor& positions, const RopeTable& table, Tensor& y);
// Rotation by the opposite angle; dx may alias dy.
void rope_backward(const Tensor& dy, const Tensor& positions, const RopeTable& table, Tensor& dx);

}  // namespace trident::ops::cpu
