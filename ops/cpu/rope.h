#pragma once
// Rotary position embedding with YaRN frequency scaling, DeepSeek-V3 style: adjacent
// (interleaved) pairs (x[2i], x[2i+1]) are rotated by angle pos · inv_freq[i].
#include "ops/types.h"

namespace trident::ops::cpu {

using ops::RopeTable;
using ops::yarn_mscale;
using ops::YarnSettings;

// YaRN: inv_freq blends interpolated and extrapolated frequencies with a linear ramp between
// the correction dims for beta_fast/beta_slow; cos/sin carry mscale(factor, mscale) /
// mscale(factor, mscale_all_dim) as in the reference implementation.
RopeTable make_rope_table(int64_t rotary_dim, int64_t max_positions, const YarnSettings& yarn);

// x [T, H, R] (R = rotary_dim; H may be 1), positions [T] (I32). y may alias x.
void rope_forward(const Tensor& x, const Tensor& positions, const RopeTable& table, Tensor& y);
// Rotation by the opposite angle; dx may alias dy.
void rope_backward(const Tensor& dy, const Tensor& positions, const RopeTable& table, Tensor& dx);

}  // namespace trident::ops::cpu
