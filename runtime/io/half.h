#pragma once
// IEEE 754 binary16 ("F16" in safetensors) <-> fp32. Trident computes in fp32 and stores bf16;
// F16 exists only at the file boundary, so it is converted on import and export.
#include <cstdint>
#include <cstring>

namespace trident::io {

// Exact: every binary16 value, including subnormals (m · 2^-24), infinities and NaNs.
inline float f16_to_float(uint16_t bits) {
  const uint32_t sign = static_cast<uint32_t>(bits & 0x8000u) << 16;
  const uint32_t exponent = (bits >> 10) & 0x1fu;
  uint32_t mantissa = bits & 0x3ffu;
  uint32_t word;
  if (exponent == 0x1f) {
    word = sign | 0x7f800000u | (mantissa << 13);  // inf or NaN (payload kept)
  } else if (exponent != 0) {
    word = sign | ((exponent + 112) << 23) | (mantissa << 13);  // rebias 15 -> 127
  } else if (mantissa == 0) {
    word = sign;  // signed zero
  } else {
    // Subnormal: shift the mantissa up until its leading one becomes the implicit bit.
    int32_t e = 113;  // 127 - 14
    while ((mantissa & 0x400u) == 0) {
      mantissa <<= 1;
      --e;
    }
    word = sign | (static_cast<uint32_t>(e) << 23) | ((mantissa & 0x3ffu) << 13);
  }
  float out;
  std::memcpy(&out, &word, sizeof(out));
  return out;
}

// Round to nearest, ties to even; overflow gives infinity, underflow gives subnormals or zero.
inline uint16_t float_to_f16(float value) {
  uint32_t word;
  std::memcpy(&word, &value, sizeof(word));
  const uint16_t sign = static_cast<uint16_t>((word >> 16) & 0x8000u);
  const uint32_t exponent = (word >> 23) & 0xffu;
  const uint32_t mantissa = word & 0x7fffffu;
  if (exponent == 0xff) {  // inf stays inf; NaN stays a quiet NaN
    return static_cast<uint16_t>(sign | 0x7c00u | (mantissa ? 0x200u | (mantissa >> 13) : 0u));
  }
  const int32_t unbiased = static_cast<int32_t>(exponent) - 127;
  if (unbiased > 15) return static_cast<uint16_t>(sign | 0x7c00u);
  if (unbiased >= -14) {
    // Normal range: keep 10 mantissa bits and round on the 13 dropped ones. A carry out of the
    // mantissa correctly bumps the exponent (and 65520 and above round up to infinity).
    uint32_t half = (static_cast<uint32_t>(unbiased + 15) << 10) | (mantissa >> 13);
    const uint32_t dropped = mantissa & 0x1fffu;
    if (dropped > 0x1000u || (dropped == 0x1000u && (half & 1u))) ++half;
    return static_cast<uint16_t>(sign | half);
  }
  if (unbiased < -25) return sign;  // below half the smallest subnormal: rounds to zero
  // Subnormal: value = full · 2^(unbiased - 23) with the implicit bit; the result counts
  // units of 2^-24, so shift right by (-unbiased - 1) and round on the bits shifted out.
  const uint32_t full = mantissa | 0x800000u;
  const uint32_t shift = static_cast<uint32_t>(-unbiased - 1);  // 14..24
  uint32_t half = full >> shift;
  const uint32_t dropped = full & ((1u << shift) - 1u);
  const uint32_t halfway = 1u << (shift - 1);
  if (dropped > halfway || (dropped == halfway && (half & 1u))) ++half;
  return static_cast<uint16_t>(sign | half);
}

}  // namespace trident::io
