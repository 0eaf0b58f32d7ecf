#pragma once
// Rotary position embedding (DeepSeek-V3 interleaved pairs, YaRN) on the GPU. The cos/sin table
// is computed on the host by the CPU op (ops/cpu/rope.h), so both backends rotate by the same
// numbers, and then copied to the device once.
#include <cuda_runtime_api.h>

#include "ops/cpu/rope.h"

namespace trident::ops::cuda {

// The settings/shape types are the shared ones of ops/types.h, so argument-dependent lookup
// also finds the op API (ops/ops.h): call these functions qualified (cuda::...).

using ops::RopeTable;
using ops::YarnSettings;

// cpu::make_rope_table with cos and sin moved to the GPU.
RopeTable make_rope_table(int64_t rotary_dim, int64_t max_positions, const YarnSettings& yarn);
// A copy of a host table with cos and sin on the GPU.
RopeTable rope_table_to_device(const RopeTable& host);

// x [T, H, R] (R = rotary_dim; H may be 1), positions [T] (I32). y may alias x.
void rope_forward(const Tensor& x, const Tensor& positions, const RopeTable& table, Tensor& y,
                  cudaStream_t stream = nullptr);
// Rotation by the opposite angle; dx may alias dy.
void rope_backward(const Tensor& dy, const Tensor& positions, const RopeTable& table, Tensor& dx,
                   cudaStream_t stream = nullptr);

}  // namespace trident::ops::cuda
