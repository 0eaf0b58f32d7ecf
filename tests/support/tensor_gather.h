#pragma once
// Gathering a rank's slice of a parameter (or of an activation) back to the global tensor
// through the registry's placement, for tests that compare a sharded layout with one rank.
#include "models/deepseek_v3/registry.h"
#include "parallel/comm/communicator.h"
#include "runtime/core/tensor.h"

namespace trident::testing {

// Whether every TP rank holds the whole parameter: replicated ones, and the routed experts
// (split by ETP, which is 1 here, not by TP).
bool whole_on_every_tp_rank(const models::ParamSpec& spec);
// The global tensor of `spec` from every TP rank's slice `local` (collective over `tp`).
Tensor gather_parameter(parallel::comm::Communicator& tp, const models::ParamSpec& spec,
                        const Tensor& local);
// [rows, cols] from every rank's [rows, cols / size] column block in rank order (collective).
Tensor gather_columns(parallel::comm::Communicator& comm, const Tensor& local);
// Largest |difference| between this rank's tensor and rank 0's (collective); 0 = identical.
double max_difference_to_rank0(parallel::comm::Communicator& comm, const Tensor& local);

}  // namespace trident::testing
