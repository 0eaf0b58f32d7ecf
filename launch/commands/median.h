#pragma once
// The median of repeated timings, as the benchmarks report them: the middle value, or the mean
// of the two middle ones for an even count.
#include <algorithm>
#include <vector>

namespace trident::launch {

inline double median(std::vector<double> values) {
  std::sort(values.begin(), values.end());
  const size_t n = values.size();
  return n % 2 == 1 ? values[n / 2] : 0.5 * (values[n / 2 - 1] + values[n / 2]);
}

}  // namespace trident::launch
