#include <gtest/gtest.h>
#include <mpi.h>

#include "parallel/comm/mpi_backend.h"

namespace trident::parallel::comm {
namespace {

CommOptions short_timeout() {
  CommOptions options;
  options.timeout_seconds = 2.0;
  options.probe_grace_seconds = 2.0;
  return options;
}

TEST(Timeout, CollectiveNamesTheRankThatNeverJoined) {
  const MpiComm world = MpiComm::world();
  MpiBackend comm(world, short_timeout());
  const int n = comm.size();
  const int skipper = n - 1;
  Tensor first = Tensor::full({8}, 1.0f);
  comm.all_reduce(first, ReduceOp::Sum)->wait();

  Tensor second = Tensor::full({8}, 2.0f);
  WorkHandle late;
  if (comm.rank() != skipper) {
    late = comm.all_reduce(second, ReduceOp::Sum);
    try {
      late->wait();
      ADD_FAILURE() << "all_reduce #2 completed without rank " << skipper;
    } catch (const Error& e) {
      EXPECT_EQ(e.kind(), ErrorKind::Timeout);
      const std::string what = e.what();
      EXPECT_NE(what.find("all_reduce #2 (f32 × 8) on group 'world'"), std::string::npos) << what;
      EXPECT_NE(what.find("not arrived: rank " + std::to_string(skipper) +
                          " (last posted all_reduce #1 (f32 × 8))"),
                std::string::npos)
          << what;
      // The ranks that did post it are listed as arrived, not blamed.
      if (n > 2) {
        EXPECT_NE(what.find(". arrived: "), std::string::npos) << what;
      }
      for (int r = 0; r < n - 1; ++r) {
        EXPECT_EQ(what.find("rank " + std::to_string(r) + " (last posted"), std::string::npos)
            << what;
      }
    }
  }
  // Everyone has reported; now the late rank catches up and the stalled op completes.
  MPI_Barrier(MPI_COMM_WORLD);
  if (comm.rank() == skipper) late = comm.all_reduce(second, ReduceOp::Sum);
  late->wait();
  EXPECT_EQ(late->info().seq, 2u);
  EXPECT_EQ(second.item(0), 2.0f * n);
}

TEST(Timeout, ReceiveNamesTheSenderThatNeverSent) {
  const MpiComm world = MpiComm::world();
  MpiBackend comm(world, short_timeout());
  Tensor buffer = Tensor::zeros({4}, DType::I64);
  WorkHandle pending;
  if (comm.rank() == 0) {
    pending = comm.recv(buffer, 1, 3);
    try {
      pending->wait(1.0);
      ADD_FAILURE() << "recv completed without a send";
    } catch (const Error& e) {
      EXPECT_EQ(e.kind(), ErrorKind::Timeout);
      const std::string what = e.what();
      EXPECT_NE(what.find("recv #1 (i64 × 4 from rank 1)"), std::string::npos) << what;
      EXPECT_NE(what.find("not arrived: rank 1 (has posted 0 send(s) to this rank)"), std::string::npos)
          << what;
    }
  }
  MPI_Barrier(MPI_COMM_WORLD);
  if (comm.rank() == 1) {
    Tensor payload = Tensor::full({4}, 42.0f, DType::I64);
    comm.send(payload, 0, 3)->wait();
  }
  if (pending) {
    pending->wait();
    EXPECT_EQ(buffer.item(3), 42.0f);
  }
}

}  // namespace
}  // namespace trident::parallel::comm
