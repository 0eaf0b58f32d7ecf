#pragma once
// Small host-side sums over any group that every member must get bit for bit alike (metrics,
// target counts, expert loads, the squared gradient norm): every member's values are gathered
// and added in rank order, so the result does not depend on the reduction algorithm. A null
// communicator is a group of one.
#include <cstdint>
#include <vector>

#include "parallel/comm/communicator.h"

namespace trident::parallel::comm {

// Element-wise sum over the group, in rank order, identical on every rank.
std::vector<double> sum_in_rank_order(Communicator* comm, const std::vector<double>& values);
double sum_in_rank_order(Communicator* comm, double value);
// Element-wise integer sum over the group (in place).
void sum_in_rank_order(Communicator* comm, std::vector<int64_t>& values);

}  // namespace trident::parallel::comm
