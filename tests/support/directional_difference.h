#pragma once
// Directional finite differences for the gradient tests. A few sampled entries of a parameter
// (or an input) move together along random ±1 signs: one derivative per evaluation pair, large
// enough to stand above the loss's round-off, and its analytic side is the same direction
// dotted with the gradient.
#include <cstdint>
#include <cstring>
#include <utility>
#include <vector>

#include "runtime/core/rng.h"

namespace trident::testing {

struct Direction {
  std::vector<int64_t> entries;
  std::vector<float> signs;

  // The analytic directional derivative: Σ sign · grad[entry].
  double along(const float* grad) const {
    double sum = 0.0;
    for (size_t i = 0; i < entries.size(); ++i) sum += signs[i] * grad[entries[i]];
    return sum;
  }
};

// `count` entries of [0, n) and their signs, drawn from `rng` at `draw` onwards.
inline Direction random_direction(const CounterRng& rng, uint64_t& draw, int64_t n, int count) {
  Direction d;
  for (int i = 0; i < count; ++i) {
    d.entries.push_back(static_cast<int64_t>(rng.bits(draw++) % static_cast<uint32_t>(n)));
    d.signs.push_back(rng.bits(draw++) % 2 == 0 ? 1.0f : -1.0f);
  }
  return d;
}

// evaluate() at values + step·d and at values − step·d, as {plus, minus}; `values` (n of them)
// are restored afterwards.
template <typename F>
auto evaluate_both_sides(float* values, int64_t n, const Direction& d, float step, F&& evaluate) {
  const std::vector<float> saved(values, values + n);
  auto at = [&](float amount) {
    std::memcpy(values, saved.data(), saved.size() * sizeof(float));
    for (size_t i = 0; i < d.entries.size(); ++i) values[d.entries[i]] += amount * d.signs[i];
    return evaluate();
  };
  auto plus = at(step);
  auto minus = at(-step);
  std::memcpy(values, saved.data(), saved.size() * sizeof(float));
  return std::make_pair(std::move(plus), std::move(minus));
}

}  // namespace trident::testing
