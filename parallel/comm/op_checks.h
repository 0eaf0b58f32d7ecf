#pragma once
// Argument checks shared by every backend, so each reports a misuse the same way. They also
// return the OpInfo fields (without the sequence number, which the backend assigns).

#include <cstdint>
#include <vector>

#include "parallel/comm/communicator.h"

namespace trident::parallel::comm {

OpInfo check_all_reduce(const Communicator& comm, const Tensor& tensor);
OpInfo check_reduce_scatter(const Communicator& comm, const Tensor& input, const Tensor& output);
OpInfo check_all_gather(const Communicator& comm, const Tensor& input, const Tensor& output);
OpInfo check_all_to_all_v(const Communicator& comm, const Tensor& input,
                          const std::vector<int64_t>& send_counts, const Tensor& output,
                          const std::vector<int64_t>& recv_counts);
OpInfo check_broadcast(const Communicator& comm, const Tensor& tensor, int root);
OpInfo check_point_to_point(const Communicator& comm, CommOp op, const Tensor& tensor, int peer,
                            int tag);

constexpr int kMaxUserTag = 32767;

}  // namespace trident::parallel::comm
