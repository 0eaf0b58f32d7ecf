#pragma once
// Counter-based random numbers (Philox4x32-10, Salmon et al. 2011). A value is a pure
// function of (seed, stream key, counter): there is no hidden state, so a shard of a
// parameter initialises exactly its slice of the global tensor by using the *global*
// element index as the counter, and rollouts keyed by (prompt, sample, position) do not
// depend on how the batch is split across ranks.

#include <array>
#include <cstdint>
#include <string_view>

namespace trident {

using PhiloxBlock = std::array<uint32_t, 4>;

// Philox4x32 with 10 rounds: 128-bit counter, 64-bit key -> 128 random bits.
PhiloxBlock philox4x32(const PhiloxBlock& counter, uint64_t key);

// A stable 64-bit hash (FNV-1a) of a name, used as a stream id (e.g. a parameter's HF name).
uint64_t stream_id(std::string_view name);

class CounterRng {
 public:
  // seed: the run's seed; stream: which independent sequence (e.g. stream_id(param name)).
  CounterRng(uint64_t seed, uint64_t stream) : seed_(seed), stream_(stream) {}

  // Uniform in (0, 1), a pure function of (seed, stream, index).
  float uniform(uint64_t index) const;
  // Standard normal (Box-Muller on the first two words of the block), same contract.
  float normal(uint64_t index) const;
  // Raw 32 random bits for index.
  uint32_t bits(uint64_t index) const;

  uint64_t seed() const { return seed_; }
  uint64_t stream() const { return stream_; }

 private:
  PhiloxBlock block(uint64_t index) const;
  uint64_t seed_;
  uint64_t stream_;
};

}  // namespace trident
