#pragma once
// Communicator for CPU tensors over MPI non-blocking operations.
//
// Each operation is posted (MPI_Iallreduce, MPI_Ialltoallv, ...) on a private duplicate of
// the group's communicator and handed to an MpiProgress: its background thread keeps calling
// MPI_Test on everything outstanding (Open MPI advances non-blocking collectives only inside
// MPI calls, so without it a collective would sit still while the caller computes), and a
// thread in Work::wait() tests them itself. Work completes when MPI reports completion.
//
// bf16 reductions are carried out in fp32 (MPI has no bf16 type): the tensor is widened,
// reduced, and rounded back once on completion. bf16 data movement is moved as 16-bit words.

#include <functional>
#include <memory>
#include <mutex>
#include <vector>

#include "parallel/comm/arrival_probe.h"
#include "parallel/comm/communicator.h"
#include "parallel/comm/mpi_comm.h"
#include "parallel/comm/mpi_progress.h"

namespace trident::parallel::comm {

class MpiBackend final : public Communicator {
 public:
  // Collective over `group`: duplicates it twice (data and arrival probe).
  explicit MpiBackend(const MpiComm& group, const CommOptions& options = {});
  ~MpiBackend() override;
  MpiBackend(const MpiBackend&) = delete;
  MpiBackend& operator=(const MpiBackend&) = delete;

  int rank() const override { return comm_.rank(); }
  int size() const override { return comm_.size(); }
  const std::string& name() const override { return name_; }
  Device device() const override { return Device::CPU; }
  std::string describe_member(int group_rank) const override;
  const CommOptions& options() const override { return options_; }

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
  // Assigns the sequence number, publishes it, calls `post` to issue the MPI call, and hands
  // the request to the progress engine.
  WorkHandle submit(OpInfo info, std::shared_ptr<MpiWorkState> state,
                    const std::function<int(MPI_Request*)>& post);

  std::string name_;
  CommOptions options_;
  MpiComm comm_;
  std::shared_ptr<ArrivalProbe> probe_;
  std::mutex submit_mutex_;                // keeps numbering and posting order identical
  std::shared_ptr<MpiProgress> progress_;  // shared with the Work handles that wait on it
};

}  // namespace trident::parallel::comm
