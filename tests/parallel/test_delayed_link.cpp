#include <gtest/gtest.h>

#include <chrono>
#include <cmath>

#include "parallel/comm/delayed_link.h"
#include "parallel/comm/mpi_backend.h"

namespace trident::parallel::comm {
namespace {

using Clock = std::chrono::steady_clock;

TEST(DelayedLinkModel, WireBytesFollowTheAlgorithms) {
  OpInfo info;
  info.dtype = DType::F32;
  info.count = 1000;  // 4000 bytes
  info.op = CommOp::AllReduce;
  EXPECT_DOUBLE_EQ(modelled_wire_bytes(info, 4), 2.0 * 3.0 / 4.0 * 4000);
  info.op = CommOp::ReduceScatter;  // count = the whole input
  EXPECT_DOUBLE_EQ(modelled_wire_bytes(info, 4), 3.0 / 4.0 * 4000);
  info.op = CommOp::AllGather;  // count = one input block; output is 4 blocks
  EXPECT_DOUBLE_EQ(modelled_wire_bytes(info, 4), 3.0 / 4.0 * 4 * 4000);
  info.op = CommOp::Broadcast;
  EXPECT_DOUBLE_EQ(modelled_wire_bytes(info, 4), 4000);
  info.op = CommOp::Barrier;
  EXPECT_DOUBLE_EQ(modelled_wire_bytes(info, 4), 0);
  info.op = CommOp::AllReduce;
  EXPECT_DOUBLE_EQ(modelled_wire_bytes(info, 1), 0) << "a group of one has no link";
  info.op = CommOp::AllToAllV;
  info.dtype = DType::BF16;
  // Rank 1 of 3 sends 10 and 0 elements away (5 to itself), receives 2 and 7.
  EXPECT_DOUBLE_EQ(modelled_wire_bytes(info, 3, {10, 5, 0}, {2, 5, 7}, 1), 2.0 * 10);
  LinkModel link;
  link.gbytes_per_s = 2.0;
  EXPECT_EQ(link.transfer_time(4e9).count(), 2'000'000'000);
}

TEST(DelayedLinkModel, GroupsPickTheirLink) {
  LinkConfig config;
  config.intra_node.gbytes_per_s = 100;
  config.inter_node.gbytes_per_s = 10;
  config.per_axis["ep"].gbytes_per_s = 40;
  EXPECT_EQ(config.for_group("tp", false).gbytes_per_s, 100);
  EXPECT_EQ(config.for_group("dp", true).gbytes_per_s, 10);
  EXPECT_EQ(config.for_group("ep", true).gbytes_per_s, 40);
}

TEST(DelayedLink, OperationStaysInFlightWhileTheThreadComputes) {
  const MpiComm world = MpiComm::world();
  auto inner = std::make_shared<MpiBackend>(world);
  LinkModel link;
  link.latency_us = 300'000;  // 0.3 s: long enough that the compute below runs inside it
  DelayedLink comm(inner, link);
  const int n = comm.size();

  Tensor data = Tensor::full({1000}, static_cast<float>(comm.rank() + 1));
  const auto posted = Clock::now();
  WorkHandle work = comm.all_reduce(data, ReduceOp::Sum);
  const auto modelled_finish = posted + std::chrono::microseconds(300'000);
  EXPECT_FALSE(work->test()) << "completed before the modelled link delay";

  // Compute while the reduction is in flight; the operation must not complete early.
  double acc = 0;
  int polls_in_flight = 0;
  while (Clock::now() < modelled_finish - std::chrono::milliseconds(50)) {
    for (int i = 1; i <= 20000; ++i) acc += 1.0 / i;
    if (Clock::now() < modelled_finish) {
      EXPECT_FALSE(work->test());
      ++polls_in_flight;
    }
  }
  EXPECT_GT(acc, 0);
  EXPECT_GT(polls_in_flight, 0);

  work->wait();
  EXPECT_GE(Clock::now(), modelled_finish);
  EXPECT_TRUE(work->test());
  EXPECT_EQ(data.item(999), static_cast<float>(n * (n + 1) / 2));
}

TEST(DelayedLink, OperationsOnOneLinkQueueBehindEachOthersTransfer) {
  const MpiComm world = MpiComm::world();
  auto inner = std::make_shared<MpiBackend>(world);
  LinkModel link;
  link.gbytes_per_s = 0.001;  // 1 MB/s: 100 kB of wire bytes take 0.1 s
  DelayedLink comm(inner, link);
  if (comm.size() < 2) GTEST_SKIP() << "needs two ranks";
  const int64_t count = 25'000;  // broadcast: 100 kB on the wire
  Tensor a = Tensor::full({count}, comm.rank() == 0 ? 3.0f : 0.0f);
  Tensor b = Tensor::full({count}, comm.rank() == 0 ? 4.0f : 0.0f);
  const auto posted = Clock::now();
  WorkHandle first = comm.broadcast(a, 0);
  WorkHandle second = comm.broadcast(b, 0);
  second->wait();
  EXPECT_TRUE(first->test()) << "the second finished before the first";
  EXPECT_GE(Clock::now(), posted + std::chrono::milliseconds(200));
  first->wait();
  EXPECT_EQ(a.item(count - 1), 3.0f);
  EXPECT_EQ(b.item(count - 1), 4.0f);
}

}  // namespace
}  // namespace trident::parallel::comm
