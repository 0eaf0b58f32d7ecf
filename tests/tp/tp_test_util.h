#pragma once
// Shared pieces of the tensor-parallel tests: the world as the TP group, and gathering a
// rank's slice back to the global tensor through the registry's placement.
#include <memory>

#include "models/deepseek_v3/registry.h"
#include "parallel/comm/mpi_backend.h"
#include "parallel/comm/mpi_comm.h"
#include "runtime/core/tensor.h"

namespace trident::parallel::testing {

// Every rank of the job forms one TP group.
struct WorldGroup {
  WorldGroup();
  MpiComm world;
  std::unique_ptr<MpiBackend> comm;
  int rank() const { return comm->rank(); }
  int size() const { return comm->size(); }
};

// Whether every TP rank holds the whole parameter: replicated ones, and the routed experts
// (split by ETP, which is 1 here, not by TP).
bool whole_on_every_tp_rank(const models::ParamSpec& spec);
// The global tensor of `spec` from every TP rank's slice `local` (collective).
Tensor gather_parameter(Communicator& comm, const models::ParamSpec& spec, const Tensor& local);
// [rows, cols] from every rank's [rows, cols / size] column block in rank order (collective).
Tensor gather_columns(Communicator& comm, const Tensor& local);
// Largest |difference| between this rank's tensor and rank 0's (collective); 0 = identical.
double max_difference_to_rank0(Communicator& comm, const Tensor& local);

}  // namespace trident::parallel::testing
