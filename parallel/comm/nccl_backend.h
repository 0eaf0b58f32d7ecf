#pragma once
// Communicator for CUDA tensors over NCCL. Built only when the CUDA toolkit is present
// (TRIDENT_HAVE_NCCL); it compiles and links on machines without a GPU and runs on one.
//
// Rank 0 of the group creates the ncclUniqueId and broadcasts it over MPI; the communicator is
// created in NCCL's non-blocking mode, so that creation and operations that a peer never joins
// are aborted at the timeout (ncclCommAbort) instead of hanging, and each set-up step is agreed
// on over MPI so that a rank without a GPU stops every rank with its reason. Operations run on a
// dedicated communication stream that first waits for an event recorded on the compute
// stream, so a collective sees everything the compute stream queued before the call. Each
// Work records a completion event on the communication stream: test() queries it, wait()
// polls it against the timeout and, on expiry, asks the other ranks (through the same
// ArrivalProbe as the MPI backend) who has not arrived. all_to_all_v is a grouped set of
// ncclSend/ncclRecv. NCCL has no tags: point-to-point messages between a pair match in order.

#include <cuda_runtime.h>
#include <nccl.h>

#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "parallel/comm/arrival_probe.h"
#include "parallel/comm/communicator.h"
#include "parallel/comm/mpi_comm.h"

namespace trident::parallel::comm {

// The NCCL communicator, shared by the backend and its operations in flight. Every NCCL call on
// it is made holding `mutex`, so an abort (an operation that timed out) never frees it under
// another thread's call; after an abort `comm` is null and every later use fails saying so.
struct SharedNcclComm {
  std::mutex mutex;
  ncclComm_t comm = nullptr;
  // ncclCommAbort and forget it; the caller holds `mutex`.
  void abort_locked();
};

class NcclBackend final : public Communicator {
 public:
  // Collective over `group`. Uses the current CUDA device; `compute_stream` is the stream
  // whose work every operation is ordered after (nullptr: the legacy default stream).
  NcclBackend(const MpiComm& group, cudaStream_t compute_stream,
              const CommOptions& options = {});
  ~NcclBackend() override;
  NcclBackend(const NcclBackend&) = delete;
  NcclBackend& operator=(const NcclBackend&) = delete;

  int rank() const override { return rank_; }
  int size() const override { return size_; }
  const std::string& name() const override { return name_; }
  Device device() const override { return Device::CUDA; }
  std::string describe_member(int group_rank) const override;
  const CommOptions& options() const override { return options_; }
  cudaStream_t comm_stream() const { return comm_stream_; }

  WorkHandle all_reduce(const Tensor& tensor, ReduceOp op) override;
  WorkHandle reduce_scatter(const Tensor& input, const Tensor& output, ReduceOp op) override;
  WorkHandle all_gather(const Tensor& input, const Tensor& output) override;
  WorkHandle all_to_all_v(const Tensor& input, const std::vector<int64_t>& send_counts,
                          const Tensor& output, const std::vector<int64_t>& recv_counts) override;
  WorkHandle broadcast(const Tensor& tensor, int root) override;
  WorkHandle send(const Tensor& tensor, int peer, int tag) override;
  WorkHandle recv(const Tensor& tensor, int peer, int tag) override;
  WorkHandle barrier() override;

 private:
  // Numbers and publishes the op, orders the comm stream after the compute stream, runs
  // `enqueue` (the NCCL calls) and records the completion event.
  template <typename Enqueue>
  WorkHandle launch(OpInfo info, std::vector<Tensor> keep_alive, Enqueue&& enqueue);
  // ncclCommInitRankConfig in non-blocking mode, aborted at the timeout; what went wrong on
  // this rank, or empty.
  std::string create(const ncclUniqueId& id);
  // Frees the streams and events, and aborts (`abort`) or destroys the communicator.
  void release(bool abort);

  std::string name_;
  CommOptions options_;
  MpiComm mpi_;  // member names for messages
  std::shared_ptr<ArrivalProbe> probe_;
  int rank_ = 0;
  int size_ = 1;
  int device_ = 0;
  std::shared_ptr<SharedNcclComm> nccl_ = std::make_shared<SharedNcclComm>();
  cudaStream_t compute_stream_ = nullptr;
  cudaStream_t comm_stream_ = nullptr;
  cudaEvent_t ready_ = nullptr;  // recorded on the compute stream before each op
  Tensor barrier_scratch_;
};

}  // namespace trident::parallel::comm
