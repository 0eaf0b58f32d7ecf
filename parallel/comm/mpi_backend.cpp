#include "parallel/comm/mpi_backend.h"

#include <chrono>
#include <climits>

#include "parallel/comm/op_checks.h"
#include "runtime/core/device_access.h"
#include "runtime/core/error.h"

namespace trident::parallel::comm {

namespace {

MPI_Datatype mpi_type(DType dtype) {
  switch (dtype) {
    case DType::F32: return MPI_FLOAT;
    case DType::BF16: return MPI_UINT16_T;  // moved, never reduced, as 16-bit words
    case DType::I32: return MPI_INT32_T;
    case DType::I64: return MPI_INT64_T;
  }
  return MPI_DATATYPE_NULL;
}

MPI_Op mpi_op(ReduceOp op) { return op == ReduceOp::Sum ? MPI_SUM : MPI_MAX; }

int to_int_count(int64_t count, const char* what) {
  TRIDENT_CHECK(count >= 0 && count <= INT_MAX, what, " of ", count,
                " elements exceeds MPI's int count limit; split the operation");
  return static_cast<int>(count);
}

class MpiWork final : public Work {
 public:
  MpiWork(std::shared_ptr<MpiWorkState> state, std::shared_ptr<MpiProgress> progress,
          std::shared_ptr<ArrivalProbe> probe, OpInfo info, std::string group, int group_size,
          double default_timeout)
      : state_(std::move(state)),
        progress_(std::move(progress)),
        probe_(std::move(probe)),
        info_(std::move(info)),
        group_(std::move(group)),
        group_size_(group_size),
        default_timeout_(default_timeout) {}

  bool test() override {
    std::lock_guard<std::mutex> lock(state_->mutex);
    if (state_->done) rethrow_failure();
    return state_->done;
  }

  void wait(double timeout_seconds) override {
    const double timeout = timeout_seconds < 0 ? default_timeout_ : timeout_seconds;
    if (progress_->wait(*state_, std::chrono::duration<double>(timeout))) {
      std::lock_guard<std::mutex> lock(state_->mutex);
      rethrow_failure();
      return;
    }
    const std::string diagnosis = probe_->diagnose(info_);
    TRIDENT_FAIL_KIND(ErrorKind::Timeout, info_.describe(), " on group '", group_, "' (",
                      group_size_, " ranks) did not complete within ", timeout, " s; ",
                      diagnosis);
  }

  const OpInfo& info() const override { return info_; }

 private:
  // Call with state_->mutex held.
  void rethrow_failure() const {
    if (!state_->error.empty()) {
      TRIDENT_FAIL_KIND(ErrorKind::Mpi, info_.describe(), " on group '", group_,
                        "' failed: ", state_->error);
    }
  }

  std::shared_ptr<MpiWorkState> state_;
  std::shared_ptr<MpiProgress> progress_;  // also drives completion while wait() blocks
  std::shared_ptr<ArrivalProbe> probe_;
  OpInfo info_;
  std::string group_;
  int group_size_;
  double default_timeout_;
};

std::shared_ptr<MpiWorkState> new_state(std::vector<Tensor> keep_alive) {
  auto state = std::make_shared<MpiWorkState>();
  state->keep_alive = std::move(keep_alive);
  return state;
}

}  // namespace

MpiBackend::MpiBackend(const MpiComm& group, const CommOptions& options)
    : name_(group.name()),
      options_(options),
      comm_(group.duplicate(".data")),
      probe_(std::make_shared<ArrivalProbe>(group, options.probe_grace_seconds)) {
  TRIDENT_USER_CHECK(options.timeout_seconds > 0, "parallel.comm_timeout_s = ",
                     options.timeout_seconds, " must be positive");
  progress_ = std::make_shared<MpiProgress>(name_);
}

// Testing stops before the communicator is freed, even while Work handles still share the
// progress engine.
MpiBackend::~MpiBackend() { progress_->stop(); }

std::string MpiBackend::describe_member(int group_rank) const {
  return comm_.describe_member(group_rank);
}

WorkHandle MpiBackend::submit(OpInfo info, std::shared_ptr<MpiWorkState> state,
                              const std::function<int(MPI_Request*)>& post) {
  MPI_Request request = MPI_REQUEST_NULL;
  {
    std::lock_guard<std::mutex> lock(submit_mutex_);
    probe_->number(info);
    const DeviceCode transfer;  // MPI reads and writes the tensors where they are
    const int rc = post(&request);
    if (rc != MPI_SUCCESS) {
      TRIDENT_FAIL_KIND(ErrorKind::Mpi, "posting ", info.describe(), " on group '", name_,
                        "' failed: ", detail::mpi_error_string(rc));
    }
  }
  progress_->add(request, state);
  return std::make_shared<MpiWork>(std::move(state), progress_, probe_, std::move(info), name_,
                                   size(), options_.timeout_seconds);
}

WorkHandle MpiBackend::all_reduce(const Tensor& tensor, ReduceOp op) {
  OpInfo info = check_all_reduce(*this, tensor);
  const int count = to_int_count(tensor.numel(), "all_reduce");
  MPI_Comm comm = comm_.get();
  if (tensor.dtype() == DType::BF16) {
    Tensor wide = tensor.to(DType::F32);
    auto state = new_state({tensor, wide});
    state->on_complete = [target = tensor, wide]() mutable { target.copy_from(wide); };
    return submit(info, state, [=](MPI_Request* request) {
      return MPI_Iallreduce(MPI_IN_PLACE, wide.raw_data(), count, MPI_FLOAT, mpi_op(op), comm,
                            request);
    });
  }
  auto state = new_state({tensor});
  return submit(info, state, [=](MPI_Request* request) {
    return MPI_Iallreduce(MPI_IN_PLACE, tensor.raw_data(), count, mpi_type(tensor.dtype()),
                          mpi_op(op), comm, request);
  });
}

WorkHandle MpiBackend::reduce_scatter(const Tensor& input, const Tensor& output, ReduceOp op) {
  OpInfo info = check_reduce_scatter(*this, input, output);
  const int block = to_int_count(output.numel(), "reduce_scatter block");
  MPI_Comm comm = comm_.get();
  if (input.dtype() == DType::BF16) {
    Tensor wide_in = input.to(DType::F32);
    Tensor wide_out = Tensor::empty(output.shape(), DType::F32);
    auto state = new_state({input, output, wide_in, wide_out});
    state->on_complete = [target = output, wide_out]() mutable { target.copy_from(wide_out); };
    return submit(info, state, [=](MPI_Request* request) {
      return MPI_Ireduce_scatter_block(wide_in.raw_data(), wide_out.raw_data(), block, MPI_FLOAT,
                                       mpi_op(op), comm, request);
    });
  }
  auto state = new_state({input, output});
  return submit(info, state, [=](MPI_Request* request) {
    return MPI_Ireduce_scatter_block(input.raw_data(), output.raw_data(), block,
                                     mpi_type(input.dtype()), mpi_op(op), comm, request);
  });
}

WorkHandle MpiBackend::all_gather(const Tensor& input, const Tensor& output) {
  OpInfo info = check_all_gather(*this, input, output);
  const int count = to_int_count(input.numel(), "all_gather block");
  const MPI_Datatype type = mpi_type(input.dtype());
  MPI_Comm comm = comm_.get();
  return submit(info, new_state({input, output}), [=](MPI_Request* request) {
    return MPI_Iallgather(input.raw_data(), count, type, output.raw_data(), count, type, comm,
                          request);
  });
}

WorkHandle MpiBackend::all_to_all_v(const Tensor& input, const std::vector<int64_t>& send_counts,
                                    const Tensor& output,
                                    const std::vector<int64_t>& recv_counts) {
  OpInfo info = check_all_to_all_v(*this, input, send_counts, output, recv_counts);
  const size_t n = static_cast<size_t>(size());
  auto state = new_state({input, output});
  // MPI reads the count arrays until completion, so they live in the Work's state.
  state->counts.assign(4 * n, 0);
  int* sc = state->counts.data();
  int* sd = sc + n;
  int* rc = sd + n;
  int* rd = rc + n;
  int64_t send_offset = 0;
  int64_t recv_offset = 0;
  for (size_t p = 0; p < n; ++p) {
    sc[p] = to_int_count(send_counts[p], "all_to_all_v send block");
    rc[p] = to_int_count(recv_counts[p], "all_to_all_v receive block");
    sd[p] = to_int_count(send_offset, "all_to_all_v send offset");
    rd[p] = to_int_count(recv_offset, "all_to_all_v receive offset");
    send_offset += send_counts[p];
    recv_offset += recv_counts[p];
  }
  const MPI_Datatype type = mpi_type(input.dtype());
  MPI_Comm comm = comm_.get();
  return submit(info, state, [=](MPI_Request* request) {
    return MPI_Ialltoallv(input.raw_data(), sc, sd, type, output.raw_data(), rc, rd, type, comm,
                          request);
  });
}

WorkHandle MpiBackend::broadcast(const Tensor& tensor, int root) {
  OpInfo info = check_broadcast(*this, tensor, root);
  const int count = to_int_count(tensor.numel(), "broadcast");
  MPI_Comm comm = comm_.get();
  return submit(info, new_state({tensor}), [=](MPI_Request* request) {
    return MPI_Ibcast(tensor.raw_data(), count, mpi_type(tensor.dtype()), root, comm, request);
  });
}

WorkHandle MpiBackend::send(const Tensor& tensor, int peer, int tag) {
  OpInfo info = check_point_to_point(*this, CommOp::Send, tensor, peer, tag);
  const int count = to_int_count(tensor.numel(), "send");
  MPI_Comm comm = comm_.get();
  return submit(info, new_state({tensor}), [=](MPI_Request* request) {
    return MPI_Isend(tensor.raw_data(), count, mpi_type(tensor.dtype()), peer, tag, comm,
                     request);
  });
}

WorkHandle MpiBackend::recv(const Tensor& tensor, int peer, int tag) {
  OpInfo info = check_point_to_point(*this, CommOp::Recv, tensor, peer, tag);
  const int count = to_int_count(tensor.numel(), "recv");
  MPI_Comm comm = comm_.get();
  return submit(info, new_state({tensor}), [=](MPI_Request* request) {
    return MPI_Irecv(tensor.raw_data(), count, mpi_type(tensor.dtype()), peer, tag, comm,
                     request);
  });
}

WorkHandle MpiBackend::barrier() {
  OpInfo info;
  info.op = CommOp::Barrier;
  MPI_Comm comm = comm_.get();
  return submit(info, new_state({}),
                [=](MPI_Request* request) { return MPI_Ibarrier(comm, request); });
}

}  // namespace trident::parallel::comm
