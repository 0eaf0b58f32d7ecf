#pragma once
// CRC-32C (Castagnoli), used by TensorBoard's record framing and by checkpoint checksums.
#include <cstddef>
#include <cstdint>

namespace trident::io {

uint32_t crc32c(const void* data, size_t size, uint32_t seed = 0);
// TFRecord's "masked" CRC: rotate right by 15 and add a constant, so CRCs of CRCs stay strong.
uint32_t masked_crc32c(const void* data, size_t size);

}  // namespace trident::io
