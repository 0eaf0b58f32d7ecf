#include "ops/cuda/kernel_utils.h"
#include "ops/cuda/rope.h"

namespace trident::ops::cuda {
namespace {

constexpr int kThreads = 256;

// One thread per pair. direction = +1 rotates by θ, −1 by −θ. Each thread reads its pair
// before writing it, so the output may alias the input.
__global__ void rope_kernel(const float* in, const int32_t* positions, const float* cos_table,
                            const float* sin_table, float* out, int64_t heads, int64_t pairs,
                            int64_t total_pairs, float direction) {
  for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < total_pairs;
       i += int64_t{gridDim.x} * blockDim.x) {
    const int64_t pair = i % pairs;
    const int64_t token = i / (pairs * heads);
    const int64_t angle = int64_t{positions[token]} * pairs + pair;
    const float c = cos_table[angle];
    const float s = direction * sin_table[angle];
    const float a = in[2 * i];
    const float b = in[2 * i + 1];
    out[2 * i] = a * c - b * s;
    out[2 * i + 1] = a * s + b * c;
  }
}

void rope_apply(const Tensor& in, const Tensor& positions, const RopeTable& table, Tensor& out,
                float direction, cudaStream_t stream) {
  detail::expect_dtype(in, DType::F32, "rope input");
  detail::expect_dtype(out, DType::F32, "rope output");
  detail::expect_dtype(positions, DType::I32, "rope positions");
  detail::expect_dtype(table.cos, DType::F32, "rope cos table");
  detail::expect_dtype(table.sin, DType::F32, "rope sin table");
  const int64_t rotary = table.rotary_dim;
  TRIDENT_CHECK(rotary > 0 && rotary % 2 == 0, "rope rotary_dim must be even, got ", rotary);
  const int64_t tokens = positions.numel();
  TRIDENT_CHECK(tokens > 0 && in.numel() % (tokens * rotary) == 0, "rope input ",
                in.describe(), " is not [", tokens, ", H, ", rotary, "]");
  detail::expect_numel(out, in.numel(), "rope output");
  const int64_t pairs = rotary / 2;
  const int64_t heads = in.numel() / (tokens * rotary);
  const int64_t total = in.numel() / 2;
  // Positions are not checked against max_positions here: that would need a device sync.
  rope_kernel<<<detail::blocks_for(total, kThreads), kThreads, 0, stream>>>(
      in.data<float>(), positions.data<int32_t>(), table.cos.data<float>(),
      table.sin.data<float>(), out.data<float>(), heads, pairs, total, direction);
  TRIDENT_CHECK_LAUNCH();
}

}  // namespace

RopeTable rope_table_to_device(const RopeTable& host) {
  RopeTable device;
  device.rotary_dim = host.rotary_dim;
  device.max_positions = host.max_positions;
  device.cos = host.cos.to(Device::CUDA);
  device.sin = host.sin.to(Device::CUDA);
  return device;
}

RopeTable make_rope_table(int64_t rotary_dim, int64_t max_positions, const YarnSettings& yarn) {
  return rope_table_to_device(cpu::make_rope_table(rotary_dim, max_positions, yarn));
}

void rope_forward(const Tensor& x, const Tensor& positions, const RopeTable& table, Tensor& y,
                  cudaStream_t stream) {
  rope_apply(x, positions, table, y, 1.0f, stream);
}

void rope_backward(const Tensor& dy, const Tensor& positions, const RopeTable& table, Tensor& dx,
                   cudaStream_t stream) {
  rope_apply(dy, positions, table, dx, -1.0f, stream);
}

}  // namespace trident::ops::cuda
