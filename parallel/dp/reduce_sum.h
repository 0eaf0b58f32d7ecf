#pragma once
// Small sums across the data-parallel group that every rank must get bit for bit alike
// (metrics, the squared gradient norm): every rank's doubles are gathered and added in rank
// order, so the result does not depend on the reduction algorithm. A null communicator is a
// group of one.
#include <cstdint>
#include <vector>

#include "parallel/comm/communicator.h"

namespace trident::parallel::dp {

// Element-wise sum over the group, in rank order, identical on every rank.
std::vector<double> sum_over_ranks(Communicator* comm, const std::vector<double>& values);
double sum_over_ranks(Communicator* comm, double value);
// Element-wise integer sum over the group (in place).
void sum_over_ranks(Communicator* comm, std::vector<int64_t>& values);

}  // namespace trident::parallel::dp
