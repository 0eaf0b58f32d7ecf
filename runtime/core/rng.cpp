#include "runtime/core/rng.h"

#include <cmath>

namespace trident {

namespace {
constexpr uint32_t kMul0 = 0xD2511F53u;
constexpr uint32_t kMul1 = 0xCD9E8D57u;
constexpr uint32_t kWeyl0 = 0x9E3779B9u;
constexpr uint32_t kWeyl1 = 0xBB67AE85u;

inline void mulhilo(uint32_t a, uint32_t b, uint32_t& hi, uint32_t& lo) {
  const uint64_t product = static_cast<uint64_t>(a) * static_cast<uint64_t>(b);
  hi = static_cast<uint32_t>(product >> 32);
  lo = static_cast<uint32_t>(product);
}

// Maps 32 random bits to (0, 1): never exactly 0, so log() in Box-Muller is finite.
inline float to_open_unit(uint32_t bits) {
  return (static_cast<float>(bits >> 8) + 0.5f) * (1.0f / 16777216.0f);
}
}  // namespace

PhiloxBlock philox4x32(const PhiloxBlock& counter, uint64_t key) {
  PhiloxBlock c = counter;
  uint32_t k0 = static_cast<uint32_t>(key);
  uint32_t k1 = static_cast<uint32_t>(key >> 32);
  for (int round = 0; round < 10; ++round) {
    uint32_t hi0, lo0, hi1, lo1;
    mulhilo(kMul0, c[0], hi0, lo0);
    mulhilo(kMul1, c[2], hi1, lo1);
    c = {hi1 ^ c[1] ^ k0, lo1, hi0 ^ c[3] ^ k1, lo0};
    k0 += kWeyl0;
    k1 += kWeyl1;
  }
  return c;
}

uint64_t stream_id(std::string_view name) {
  uint64_t hash = 0xcbf29ce484222325ull;
  for (unsigned char ch : name) {
    hash ^= ch;
    hash *= 0x100000001b3ull;
  }
  return hash;
}

PhiloxBlock CounterRng::block(uint64_t index) const {
  // counter = (index, stream); key = seed. Distinct streams never share a counter value.
  const PhiloxBlock counter = {static_cast<uint32_t>(index), static_cast<uint32_t>(index >> 32),
                               static_cast<uint32_t>(stream_), static_cast<uint32_t>(stream_ >> 32)};
  return philox4x32(counter, seed_);
}

uint32_t CounterRng::bits(uint64_t index) const { return block(index)[0]; }

float CounterRng::uniform(uint64_t index) const { return to_open_unit(block(index)[0]); }

float CounterRng::normal(uint64_t index) const {
  const PhiloxBlock b = block(index);
  const double u1 = static_cast<double>(to_open_unit(b[0]));
  const double u2 = static_cast<double>(to_open_unit(b[1]));
  const double radius = std::sqrt(-2.0 * std::log(u1));
  return static_cast<float>(radius * std::cos(2.0 * M_PI * u2));
}

}  // namespace trident
