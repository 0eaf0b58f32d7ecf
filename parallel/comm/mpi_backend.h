#pragma once
// Communicator for CPU tensors over MPI non-blocking operations.
//
// Each operation is posted (MPI_Iallreduce, MPI_Ialltoallv, ...) on a private duplicate of
// the group's communicator and handed to a progress thread, which keeps calling MPI_Test on
// everything outstanding. Open MPI advances non-blocking collectives only inside MPI calls,
// so without that thread a collective would sit still while the caller computes. Work
// completes when the progress thread sees MPI report completion.
//
// bf16 reductions are carried out in fp32 (MPI has no bf16 type): the tensor is widened,
// reduced, and rounded back once on completion. bf16 data movement is moved as 16-bit words.

#include <condition_variable>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "parallel/comm/arrival_probe.h"
#include "parallel/comm/communicator.h"
#include "parallel/comm/mpi_comm.h"

namespace trident::parallel {

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

  struct WorkState;  // shared by the Work handle and the progress thread

 private:
  struct Posted {
    MPI_Request request = MPI_REQUEST_NULL;
    std::shared_ptr<WorkState> state;
  };
  // Assigns the sequence number, publishes it, calls `post` to issue the MPI call, and queues
  // the request for the progress thread.
  WorkHandle submit(OpInfo info, std::shared_ptr<WorkState> state,
                    const std::function<int(MPI_Request*)>& post);
  void progress_loop();

  std::string name_;
  CommOptions options_;
  MpiComm comm_;
  std::shared_ptr<ArrivalProbe> probe_;
  std::mutex submit_mutex_;  // keeps numbering and posting order identical
  uint64_t collective_seq_ = 0;
  std::vector<uint64_t> sends_to_;
  std::vector<uint64_t> recvs_from_;

  std::mutex queue_mutex_;
  std::condition_variable queue_cv_;
  std::deque<Posted> incoming_;
  bool stop_ = false;
  std::thread progress_;
};

}  // namespace trident::parallel
