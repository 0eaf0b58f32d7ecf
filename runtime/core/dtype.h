#pragma once
// Element types and devices. bf16 is stored as the top 16 bits of an IEEE fp32 and
// converted with round-to-nearest-even; all arithmetic happens in fp32.

#include <cstdint>
#include <cstring>
#include <string>

namespace trident {

enum class DType : uint8_t { F32, BF16, I32, I64 };
// CPU: host memory. CUDA: a GPU's memory. CPUDevice: the CPU backend's device memory, host RAM
// that host code may read only through a copy to Device::CPU (runtime/core/device_access.h), so
// that a read a GPU run would get wrong fails on the CPU as well.
enum class Device : uint8_t { CPU, CUDA, CPUDevice };

// Whether memory on `device` is host RAM (the CPU kernels and MPI may address it).
inline bool in_host_ram(Device device) { return device != Device::CUDA; }

size_t dtype_size(DType dtype);
const char* dtype_name(DType dtype);
const char* device_name(Device device);

struct bf16 {
  uint16_t bits = 0;
};

inline float bf16_to_float(bf16 value) {
  uint32_t word = static_cast<uint32_t>(value.bits) << 16;
  float out;
  std::memcpy(&out, &word, sizeof(out));
  return out;
}

inline bf16 float_to_bf16(float value) {
  uint32_t word;
  std::memcpy(&word, &value, sizeof(word));
  if ((word & 0x7f800000u) == 0x7f800000u && (word & 0x007fffffu) != 0) {
    return bf16{static_cast<uint16_t>((word >> 16) | 0x0040u)};  // keep NaN a quiet NaN
  }
  const uint32_t rounding = 0x7fffu + ((word >> 16) & 1u);  // round to nearest, ties to even
  return bf16{static_cast<uint16_t>((word + rounding) >> 16)};
}

template <typename T>
constexpr DType dtype_of();
template <>
constexpr DType dtype_of<float>() { return DType::F32; }
template <>
constexpr DType dtype_of<bf16>() { return DType::BF16; }
template <>
constexpr DType dtype_of<int32_t>() { return DType::I32; }
template <>
constexpr DType dtype_of<int64_t>() { return DType::I64; }

}  // namespace trident
