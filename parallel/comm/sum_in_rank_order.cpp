#include "parallel/comm/sum_in_rank_order.h"

#include <cstring>

namespace trident::parallel::comm {

std::vector<double> sum_in_rank_order(Communicator* comm, const std::vector<double>& values) {
  if (comm == nullptr || comm->size() == 1 || values.empty()) return values;
  // Doubles travel as their 64-bit patterns (the communicators reduce f32 at most).
  const auto n = static_cast<int64_t>(values.size());
  Tensor mine = Tensor::empty({n}, DType::I64);
  std::memcpy(mine.raw_data(), values.data(), values.size() * sizeof(double));
  Tensor all = Tensor::empty({n * comm->size()}, DType::I64);
  comm->all_gather(mine, all)->wait();
  std::vector<double> gathered(static_cast<size_t>(n * comm->size()));
  std::memcpy(gathered.data(), all.raw_data(), gathered.size() * sizeof(double));
  std::vector<double> sums(values.size(), 0.0);
  for (int r = 0; r < comm->size(); ++r) {
    for (int64_t i = 0; i < n; ++i)
      sums[static_cast<size_t>(i)] += gathered[static_cast<size_t>(r * n + i)];
  }
  return sums;
}

double sum_in_rank_order(Communicator* comm, double value) {
  return sum_in_rank_order(comm, std::vector<double>{value})[0];
}

void sum_in_rank_order(Communicator* comm, std::vector<int64_t>& values) {
  if (comm == nullptr || comm->size() == 1 || values.empty()) return;
  Tensor t = Tensor::empty({static_cast<int64_t>(values.size())}, DType::I64);
  std::memcpy(t.raw_data(), values.data(), values.size() * sizeof(int64_t));
  comm->all_reduce(t, ReduceOp::Sum)->wait();
  std::memcpy(values.data(), t.raw_data(), values.size() * sizeof(int64_t));
}

}  // namespace trident::parallel::comm
