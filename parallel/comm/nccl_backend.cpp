#include "parallel/comm/nccl_backend.h"

#include <chrono>
#include <string>
#include <thread>

#include "parallel/comm/op_checks.h"
#include "parallel/comm/rank_agreement.h"
#include "runtime/core/cuda_check.h"
#include "runtime/core/error.h"

namespace trident::parallel::comm {

namespace {

ncclDataType_t nccl_type(DType dtype) {
  switch (dtype) {
    case DType::F32: return ncclFloat32;
    case DType::BF16: return ncclBfloat16;
    case DType::I32: return ncclInt32;
    case DType::I64: return ncclInt64;
  }
  return ncclFloat32;
}

ncclRedOp_t nccl_op(ReduceOp op) { return op == ReduceOp::Sum ? ncclSum : ncclMax; }

size_t to_count(int64_t count) { return static_cast<size_t>(count); }

char* element_pointer(const Tensor& tensor, int64_t offset) {
  return static_cast<char*>(tensor.raw_data()) +
         static_cast<size_t>(offset) * dtype_size(tensor.dtype());
}

using Clock = std::chrono::steady_clock;

Clock::time_point deadline_after(double seconds) {
  return Clock::now() +
         std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(seconds));
}

// The communicator runs in NCCL's non-blocking mode, so that a rank stuck in creation or in a
// collective can be aborted instead of hanging: a call may return ncclInProgress (connections
// being set up, which needs the peers), and the communicator's state then says when it has
// finished or failed. Still in progress at `deadline`: ncclInProgress is returned.
ncclResult_t settle(ncclComm_t comm, ncclResult_t rc, Clock::time_point deadline) {
  while (rc == ncclInProgress && Clock::now() < deadline) {
    std::this_thread::yield();
    const ncclResult_t queried = ncclCommGetAsyncError(comm, &rc);
    if (queried != ncclSuccess) return queried;
  }
  return rc;
}

class NcclWork final : public Work {
 public:
  NcclWork(OpInfo info, std::vector<Tensor> keep_alive, cudaEvent_t done,
           std::shared_ptr<SharedNcclComm> nccl, std::shared_ptr<ArrivalProbe> probe,
           std::string group, int group_size, double default_timeout)
      : info_(info),
        keep_alive_(std::move(keep_alive)),
        done_(done),
        nccl_(std::move(nccl)),
        probe_(std::move(probe)),
        group_(std::move(group)),
        group_size_(group_size),
        default_timeout_(default_timeout) {}

  ~NcclWork() override { cudaEventDestroy(done_); }

  bool test() override {
    const cudaError_t state = cudaEventQuery(done_);
    if (state == cudaSuccess) return true;
    if (state != cudaErrorNotReady) TRIDENT_CHECK_CUDA(state);
    std::lock_guard<std::mutex> lock(nccl_->mutex);
    TRIDENT_CHECK(nccl_->comm != nullptr, info_.describe(), " on group '", group_,
                  "': the NCCL communicator was aborted after an operation timed out");
    ncclResult_t async_error = ncclSuccess;
    TRIDENT_CHECK_NCCL(ncclCommGetAsyncError(nccl_->comm, &async_error));
    if (async_error != ncclInProgress) TRIDENT_CHECK_NCCL(async_error);
    return false;
  }

  void wait(double timeout_seconds) override {
    const double timeout = timeout_seconds < 0 ? default_timeout_ : timeout_seconds;
    const auto deadline =
        std::chrono::steady_clock::now() + std::chrono::duration<double>(timeout);
    while (!test()) {
      if (std::chrono::steady_clock::now() >= deadline) {
        // The kernels of a collective that a peer never joined spin on the GPU for ever:
        // aborting the communicator stops them, so this rank can report and exit.
        const std::string who = probe_->diagnose(info_);
        {
          std::lock_guard<std::mutex> lock(nccl_->mutex);
          nccl_->abort_locked();
        }
        TRIDENT_FAIL_KIND(ErrorKind::Timeout, info_.describe(), " on group '", group_, "' (",
                          group_size_, " ranks, NCCL) did not complete within ", timeout, " s; ",
                          who, "; the communicator was aborted");
      }
      std::this_thread::sleep_for(std::chrono::microseconds(50));
    }
  }

  const OpInfo& info() const override { return info_; }

 private:
  OpInfo info_;
  std::vector<Tensor> keep_alive_;
  cudaEvent_t done_;
  std::shared_ptr<SharedNcclComm> nccl_;
  std::shared_ptr<ArrivalProbe> probe_;
  std::string group_;
  int group_size_;
  double default_timeout_;
};

}  // namespace

NcclBackend::NcclBackend(const MpiComm& group, cudaStream_t compute_stream,
                         const CommOptions& options)
    : name_(group.name()),
      options_(options),
      mpi_(group.duplicate(".nccl")),
      probe_(std::make_shared<ArrivalProbe>(group, options.probe_grace_seconds)),
      rank_(group.rank()),
      size_(group.size()),
      compute_stream_(compute_stream) {
  // Every step that can fail on one rank alone is agreed on before the next collective, so a
  // rank without a GPU or a failed creation stops every rank with the reason, not a hang.
  std::string problem;
  const cudaError_t current = cudaGetDevice(&device_);
  if (current != cudaSuccess) {
    problem = std::string("no current CUDA device (") + cudaGetErrorString(current) +
              "); bind one GPU per rank first (parallel/gpu_binding.h)";
  }
  require_on_every_rank(mpi_, problem, "setting up NCCL for '" + name_ + "'");
  ncclUniqueId id{};
  if (rank_ == 0) {
    const ncclResult_t made = ncclGetUniqueId(&id);
    if (made != ncclSuccess) problem = std::string("ncclGetUniqueId: ") + ncclGetErrorString(made);
  }
  require_on_every_rank(mpi_, problem, "making the NCCL id of '" + name_ + "'");
  TRIDENT_CHECK_MPI(MPI_Bcast(&id, sizeof(id), MPI_BYTE, 0, mpi_.get()));
  try {
    // A rank whose communicator exists while another's creation failed must not keep it: the
    // destructor does not run for a constructor that throws.
    require_on_every_rank(mpi_, create(id), "creating the NCCL communicator '" + name_ + "'");
    TRIDENT_CHECK_CUDA(cudaStreamCreateWithFlags(&comm_stream_, cudaStreamNonBlocking));
    TRIDENT_CHECK_CUDA(cudaEventCreateWithFlags(&ready_, cudaEventDisableTiming));
    barrier_scratch_ = Tensor::zeros({1}, DType::F32, Device::CUDA);
  } catch (...) {
    release(/*abort=*/true);
    throw;
  }
}

void SharedNcclComm::abort_locked() {
  if (comm != nullptr) ncclCommAbort(comm);
  comm = nullptr;
}

std::string NcclBackend::create(const ncclUniqueId& id) {
  std::lock_guard<std::mutex> lock(nccl_->mutex);
  ncclConfig_t config = NCCL_CONFIG_INITIALIZER;
  config.blocking = 0;
  ncclResult_t rc = ncclCommInitRankConfig(&nccl_->comm, size_, id, rank_, &config);
  if (rc == ncclInProgress) {
    rc = settle(nccl_->comm, rc, deadline_after(options_.timeout_seconds));
  }
  if (rc == ncclSuccess) return "";
  nccl_->abort_locked();
  if (rc == ncclInProgress) {
    return "not every rank joined within parallel.comm_timeout_s = " +
           std::to_string(options_.timeout_seconds) + " s";
  }
  return std::string("ncclCommInitRankConfig failed: ") + ncclGetErrorString(rc);
}

NcclBackend::~NcclBackend() { release(/*abort=*/false); }

void NcclBackend::release(bool abort) {
  {
    std::lock_guard<std::mutex> lock(nccl_->mutex);
    if (nccl_->comm != nullptr) {
      ncclResult_t state = ncclSuccess;
      ncclCommGetAsyncError(nccl_->comm, &state);
      // Only a communicator with nothing failed or pending can be destroyed cleanly; destroying
      // one that a peer never joined would wait for that peer.
      if (abort || state != ncclSuccess) {
        nccl_->abort_locked();
      } else {
        ncclCommDestroy(nccl_->comm);
        nccl_->comm = nullptr;
      }
    }
  }
  if (ready_ != nullptr) cudaEventDestroy(ready_);
  if (comm_stream_ != nullptr) cudaStreamDestroy(comm_stream_);
  ready_ = nullptr;
  comm_stream_ = nullptr;
}

std::string NcclBackend::describe_member(int group_rank) const {
  return mpi_.describe_member(group_rank);
}

template <typename Enqueue>
WorkHandle NcclBackend::launch(OpInfo info, std::vector<Tensor> keep_alive, Enqueue&& enqueue) {
  std::lock_guard<std::mutex> lock(nccl_->mutex);
  TRIDENT_CHECK(nccl_->comm != nullptr, info.describe(), " on group '", name_,
                "': the NCCL communicator was aborted after an operation timed out");
  probe_->number(info);
  TRIDENT_CHECK_CUDA(cudaEventRecord(ready_, compute_stream_));
  TRIDENT_CHECK_CUDA(cudaStreamWaitEvent(comm_stream_, ready_, 0));
  // Enqueuing may have to wait for connections to peers: bounded by the timeout, after which
  // the communicator is aborted as a timed-out operation's would be.
  const ncclResult_t rc =
      settle(nccl_->comm, enqueue(nccl_->comm), deadline_after(options_.timeout_seconds));
  if (rc == ncclInProgress) {
    const std::string who = probe_->diagnose(info);
    nccl_->abort_locked();
    TRIDENT_FAIL_KIND(ErrorKind::Timeout, info.describe(), " on group '", name_, "' (", size_,
                      " ranks, NCCL) could not be enqueued within ", options_.timeout_seconds,
                      " s; ", who, "; the communicator was aborted");
  }
  TRIDENT_CHECK_NCCL(rc);
  cudaEvent_t done = nullptr;
  TRIDENT_CHECK_CUDA(cudaEventCreateWithFlags(&done, cudaEventDisableTiming));
  TRIDENT_CHECK_CUDA(cudaEventRecord(done, comm_stream_));
  return std::make_shared<NcclWork>(info, std::move(keep_alive), done, nccl_, probe_, name_, size_,
                                    options_.timeout_seconds);
}

// Each operation's `enqueue` makes the NCCL call(s) on the communicator it is handed (under the
// lock launch holds) and returns NCCL's result, which launch settles and checks.
WorkHandle NcclBackend::all_reduce(const Tensor& tensor, ReduceOp op) {
  OpInfo info = check_all_reduce(*this, tensor);
  return launch(info, {tensor}, [&](ncclComm_t comm) {
    return ncclAllReduce(tensor.raw_data(), tensor.raw_data(), to_count(tensor.numel()),
                         nccl_type(tensor.dtype()), nccl_op(op), comm, comm_stream_);
  });
}

WorkHandle NcclBackend::reduce_scatter(const Tensor& input, const Tensor& output, ReduceOp op) {
  OpInfo info = check_reduce_scatter(*this, input, output);
  return launch(info, {input, output}, [&](ncclComm_t comm) {
    return ncclReduceScatter(input.raw_data(), output.raw_data(), to_count(output.numel()),
                             nccl_type(input.dtype()), nccl_op(op), comm, comm_stream_);
  });
}

WorkHandle NcclBackend::all_gather(const Tensor& input, const Tensor& output) {
  OpInfo info = check_all_gather(*this, input, output);
  return launch(info, {input, output}, [&](ncclComm_t comm) {
    return ncclAllGather(input.raw_data(), output.raw_data(), to_count(input.numel()),
                         nccl_type(input.dtype()), comm, comm_stream_);
  });
}

WorkHandle NcclBackend::all_to_all_v(const Tensor& input, const std::vector<int64_t>& send_counts,
                                     const Tensor& output,
                                     const std::vector<int64_t>& recv_counts) {
  OpInfo info = check_all_to_all_v(*this, input, send_counts, output, recv_counts);
  const ncclDataType_t type = nccl_type(input.dtype());
  return launch(info, {input, output}, [&](ncclComm_t comm) {
    ncclResult_t rc = ncclGroupStart();
    if (rc != ncclSuccess) return rc;
    int64_t send_offset = 0;
    int64_t recv_offset = 0;
    // Inside a group the calls only record; the first failure still closes the group.
    for (int p = 0; p < size_ && rc == ncclSuccess; ++p) {
      const int64_t send_count = send_counts[static_cast<size_t>(p)];
      const int64_t recv_count = recv_counts[static_cast<size_t>(p)];
      if (send_count > 0) {
        rc = ncclSend(element_pointer(input, send_offset), to_count(send_count), type, p, comm,
                      comm_stream_);
      }
      if (recv_count > 0 && rc == ncclSuccess) {
        rc = ncclRecv(element_pointer(output, recv_offset), to_count(recv_count), type, p, comm,
                      comm_stream_);
      }
      send_offset += send_count;
      recv_offset += recv_count;
    }
    const ncclResult_t ended = ncclGroupEnd();
    return rc != ncclSuccess ? rc : ended;
  });
}

WorkHandle NcclBackend::broadcast(const Tensor& tensor, int root) {
  OpInfo info = check_broadcast(*this, tensor, root);
  return launch(info, {tensor}, [&](ncclComm_t comm) {
    return ncclBroadcast(tensor.raw_data(), tensor.raw_data(), to_count(tensor.numel()),
                         nccl_type(tensor.dtype()), root, comm, comm_stream_);
  });
}

WorkHandle NcclBackend::send(const Tensor& tensor, int peer, int tag) {
  OpInfo info = check_point_to_point(*this, CommOp::Send, tensor, peer, tag);
  return launch(info, {tensor}, [&](ncclComm_t comm) {
    return ncclSend(tensor.raw_data(), to_count(tensor.numel()), nccl_type(tensor.dtype()), peer,
                    comm, comm_stream_);
  });
}

WorkHandle NcclBackend::recv(const Tensor& tensor, int peer, int tag) {
  OpInfo info = check_point_to_point(*this, CommOp::Recv, tensor, peer, tag);
  return launch(info, {tensor}, [&](ncclComm_t comm) {
    return ncclRecv(tensor.raw_data(), to_count(tensor.numel()), nccl_type(tensor.dtype()), peer,
                    comm, comm_stream_);
  });
}

WorkHandle NcclBackend::barrier() {
  OpInfo info;
  info.op = CommOp::Barrier;
  // NCCL has no barrier: a one-element all-reduce has the same synchronising effect.
  return launch(info, {barrier_scratch_}, [&](ncclComm_t comm) {
    return ncclAllReduce(barrier_scratch_.raw_data(), barrier_scratch_.raw_data(), 1, ncclFloat32,
                         ncclSum, comm, comm_stream_);
  });
}

}  // namespace trident::parallel::comm
