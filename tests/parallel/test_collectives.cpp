#include <gtest/gtest.h>

#include <functional>
#include <numeric>

#include "parallel/comm/mpi_backend.h"
#include "parallel/mesh.h"
#include "tests/support/mpi_helpers.h"

namespace trident::parallel::comm {
namespace {

using trident::testing::encode;
using trident::testing::encode_small;

CommOptions test_options() {
  CommOptions options;
  options.timeout_seconds = 60;  // a broken test fails with a named rank, not a hung ctest
  return options;
}

// Fills a tensor of any dtype with value(i) for each element.
template <typename F>
Tensor filled(int64_t count, DType dtype, F value) {
  Tensor t = Tensor::empty({count}, dtype);
  for (int64_t i = 0; i < count; ++i) {
    const double v = static_cast<double>(value(i));
    switch (dtype) {
      case DType::F32: t.data<float>()[i] = static_cast<float>(v); break;
      case DType::BF16: t.data<bf16>()[i] = float_to_bf16(static_cast<float>(v)); break;
      case DType::I32: t.data<int32_t>()[i] = static_cast<int32_t>(v); break;
      case DType::I64: t.data<int64_t>()[i] = static_cast<int64_t>(v); break;
    }
  }
  return t;
}

// Values exact in the dtype (bf16 holds integers up to 256 exactly).
int64_t payload(DType dtype, int sender, int64_t index) {
  return dtype == DType::BF16 ? encode_small(sender, index) : encode(sender, index);
}

// What a reduced value reads back as: bf16 sums are formed in fp32 and rounded once.
float stored(DType dtype, int64_t value) {
  const auto exact = static_cast<float>(value);
  return dtype == DType::BF16 ? bf16_to_float(float_to_bf16(exact)) : exact;
}

class Collectives : public ::testing::TestWithParam<DType> {
 protected:
  MpiComm world_ = MpiComm::world();
  MpiBackend comm_{world_, test_options()};
  int n_ = comm_.size();
  int me_ = comm_.rank();
};

TEST_P(Collectives, AllReduceSumAndMax) {
  const DType dtype = GetParam();
  const int64_t count = 37;
  Tensor sum = filled(count, dtype, [&](int64_t i) { return payload(dtype, me_, i); });
  Tensor max = filled(count, dtype, [&](int64_t i) { return payload(dtype, me_, i); });
  WorkHandle a = comm_.all_reduce(sum, ReduceOp::Sum);
  WorkHandle b = comm_.all_reduce(max, ReduceOp::Max);
  b->wait();
  a->wait();
  EXPECT_TRUE(a->test());
  EXPECT_EQ(a->info().seq + 1, b->info().seq);
  for (int64_t i = 0; i < count; ++i) {
    int64_t expected = 0;
    for (int r = 0; r < n_; ++r) expected += payload(dtype, r, i);
    ASSERT_EQ(sum.item(i), stored(dtype, expected)) << "element " << i;
    ASSERT_EQ(max.item(i), static_cast<float>(payload(dtype, n_ - 1, i))) << "element " << i;
  }
}

TEST_P(Collectives, ReduceScatterEqualBlocks) {
  const DType dtype = GetParam();
  const int64_t block = 5;
  Tensor input = filled(block * n_, dtype, [&](int64_t i) { return payload(dtype, me_, i); });
  Tensor output = Tensor::empty({block}, dtype);
  comm_.reduce_scatter(input, output, ReduceOp::Sum)->wait();
  for (int64_t j = 0; j < block; ++j) {
    int64_t expected = 0;
    for (int r = 0; r < n_; ++r) expected += payload(dtype, r, me_ * block + j);
    ASSERT_EQ(output.item(j), stored(dtype, expected)) << "element " << j;
  }
}

TEST_P(Collectives, AllGatherEqualBlocks) {
  const DType dtype = GetParam();
  const int64_t block = 6;
  Tensor input = filled(block, dtype, [&](int64_t i) { return payload(dtype, me_, i); });
  Tensor output = Tensor::zeros({block * n_}, dtype);
  comm_.all_gather(input, output)->wait();
  for (int r = 0; r < n_; ++r) {
    for (int64_t j = 0; j < block; ++j) {
      ASSERT_EQ(output.item(r * block + j), static_cast<float>(payload(dtype, r, j)))
          << "block from rank " << r << " element " << j;
    }
  }
}

TEST_P(Collectives, BroadcastFromEveryRoot) {
  const DType dtype = GetParam();
  for (int root = 0; root < n_; ++root) {
    Tensor t = filled(9, dtype, [&](int64_t i) { return payload(dtype, me_, i); });
    comm_.broadcast(t, root)->wait();
    for (int64_t i = 0; i < 9; ++i) ASSERT_EQ(t.item(i), static_cast<float>(payload(dtype, root, i)));
  }
}

TEST_P(Collectives, SendRecvRing) {
  const DType dtype = GetParam();
  const int next = (me_ + 1) % n_;
  const int prev = (me_ + n_ - 1) % n_;
  Tensor out = filled(11, dtype, [&](int64_t i) { return payload(dtype, me_, i); });
  Tensor in = Tensor::zeros({11}, dtype);
  WorkHandle r = comm_.recv(in, prev, 7);
  WorkHandle s = comm_.send(out, next, 7);
  s->wait();
  r->wait();
  EXPECT_EQ(r->info().seq, 1u);
  for (int64_t i = 0; i < 11; ++i) ASSERT_EQ(in.item(i), static_cast<float>(payload(dtype, prev, i)));
}

// all_to_all_v: element k of the block rank s sends to rank p encodes (s, p, k): as
// s·10^6 + p·10^3 + k for i64, and s·32 + p·4 + k mod 4 (exact in bf16) otherwise.
void check_all_to_all_v(MpiBackend& comm, DType dtype,
                        const std::function<int64_t(int sender, int receiver)>& count_of) {
  const int n = comm.size();
  const int me = comm.rank();
  std::vector<int64_t> send_counts(static_cast<size_t>(n));
  std::vector<int64_t> recv_counts(static_cast<size_t>(n));
  for (int p = 0; p < n; ++p) {
    send_counts[static_cast<size_t>(p)] = count_of(me, p);
    recv_counts[static_cast<size_t>(p)] = count_of(p, me);
  }
  const int64_t total_send = std::accumulate(send_counts.begin(), send_counts.end(), int64_t{0});
  const int64_t total_recv = std::accumulate(recv_counts.begin(), recv_counts.end(), int64_t{0});
  std::vector<int64_t> values;
  for (int p = 0; p < n; ++p) {
    for (int64_t k = 0; k < send_counts[static_cast<size_t>(p)]; ++k) {
      values.push_back(dtype == DType::I64 ? me * 1000000 + p * 1000 + k % 1000
                                           : me * 32 + p * 4 + k % 4);
    }
  }
  Tensor input = filled(total_send, dtype, [&](int64_t i) { return values[static_cast<size_t>(i)]; });
  Tensor output = filled(total_recv, dtype, [](int64_t) { return -1; });
  comm.all_to_all_v(input, send_counts, output, recv_counts)->wait();
  int64_t offset = 0;
  for (int s = 0; s < n; ++s) {
    for (int64_t k = 0; k < recv_counts[static_cast<size_t>(s)]; ++k, ++offset) {
      const int64_t expected = dtype == DType::I64 ? s * 1000000 + me * 1000 + k % 1000
                                                   : s * 32 + me * 4 + k % 4;
      ASSERT_EQ(output.item(offset), static_cast<float>(expected))
          << "element " << k << " from rank " << s;
    }
  }
}

TEST_P(Collectives, AllToAllVWithZeroCounts) {
  // (s + 2p) mod 3 puts zeros on the diagonal and elsewhere.
  check_all_to_all_v(comm_, GetParam(), [](int s, int p) { return (s + 2 * p) % 3; });
}

TEST_P(Collectives, AllToAllVWithVeryUnequalCounts) {
  // Rank 0 sends 20000 elements to the last rank, everyone else sends one or nothing.
  const int last = n_ - 1;
  check_all_to_all_v(comm_, GetParam(), [last](int s, int p) -> int64_t {
    if (s == 0 && p == last) return 20000;
    return (s + p) % 2;
  });
}

TEST_P(Collectives, AllToAllVEverythingEmpty) {
  check_all_to_all_v(comm_, GetParam(), [](int, int) { return 0; });
}

INSTANTIATE_TEST_SUITE_P(Dtypes, Collectives,
                         ::testing::Values(DType::F32, DType::BF16, DType::I32, DType::I64),
                         [](const ::testing::TestParamInfo<DType>& param) {
                           return std::string(dtype_name(param.param));
                         });

TEST(CollectivesOnMesh, ManyOutstandingOpsOnSubgroupsCompleteInAnyWaitOrder) {
  const int world = testing::world_size();
  MeshSizes sizes;
  sizes.dp = 2;
  sizes.tp = world / 2;
  sizes.ep = world / 2;
  const Mesh mesh(sizes);
  MpiBackend dp(mesh.dp(), test_options());
  MpiBackend tp(mesh.tp(), test_options());
  std::vector<Tensor> dp_tensors;
  std::vector<Tensor> tp_tensors;
  std::vector<WorkHandle> works;
  for (int i = 0; i < 6; ++i) {
    dp_tensors.push_back(Tensor::full({100}, static_cast<float>(mesh.rank() + i)));
    tp_tensors.push_back(Tensor::full({50}, static_cast<float>(mesh.rank() * i)));
    works.push_back(dp.all_reduce(dp_tensors.back(), ReduceOp::Sum));
    works.push_back(tp.all_reduce(tp_tensors.back(), ReduceOp::Max));
  }
  for (auto it = works.rbegin(); it != works.rend(); ++it) (*it)->wait();
  for (int i = 0; i < 6; ++i) {
    float dp_sum = 0;
    for (int member : mesh.dp().world_ranks()) dp_sum += static_cast<float>(member + i);
    float tp_max = 0;
    for (int member : mesh.tp().world_ranks()) tp_max = std::max(tp_max, static_cast<float>(member * i));
    EXPECT_EQ(dp_tensors[static_cast<size_t>(i)].item(99), dp_sum);
    EXPECT_EQ(tp_tensors[static_cast<size_t>(i)].item(0), tp_max);
  }
}

TEST(CollectivesMisuse, WrongShapesAreRejectedBeforeAnythingIsPosted) {
  const MpiComm world = MpiComm::world();
  MpiBackend comm(world, test_options());
  Tensor input = Tensor::zeros({4});
  Tensor wrong = Tensor::zeros({4 * comm.size() + 1});
  EXPECT_THROW(comm.all_gather(input, wrong), Error);
  EXPECT_THROW(comm.reduce_scatter(wrong, input, ReduceOp::Sum), Error);
  EXPECT_THROW(comm.broadcast(input, comm.size()), Error);
  EXPECT_THROW(comm.all_to_all_v(input, std::vector<int64_t>(static_cast<size_t>(comm.size()), 0),
                                 input, std::vector<int64_t>(static_cast<size_t>(comm.size()), 0)),
               Error);
  EXPECT_THROW(comm.send(input, comm.rank(), 0), Error);
  // Nothing was posted, so the numbering is still at the start on every rank.
  WorkHandle work = comm.barrier();
  work->wait();
  EXPECT_EQ(work->info().seq, 1u);
}

}  // namespace
}  // namespace trident::parallel::comm
