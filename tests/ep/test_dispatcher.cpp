// The dispatcher under mpirun. Every row a rank sends encodes (sender rank, token index), so a
// row that arrives at the wrong rank, for the wrong expert, in the wrong place, twice or not at
// all is caught by comparing the received rows with the list every rank can compute from the
// (deterministic) routing of all ranks.
#include <gtest/gtest.h>

#include <memory>
#include <vector>

#include "parallel/comm/delayed_link.h"
#include "parallel/comm/mpi_backend.h"
#include "parallel/ep/dispatcher.h"
#include "runtime/core/rng.h"
#include "tests/support/mpi_helpers.h"

namespace trident::parallel::ep {
namespace {

using trident::testing::world_rank;
using trident::testing::world_size;
using namespace parallel::comm;

constexpr int64_t kExperts = 8;
constexpr int64_t kWidth = 3;

enum class Routing { Random, SomeExpertsIdle, AllToOneExpert };

// Expert choices of `rank`'s tokens: k distinct experts per token.
std::vector<int32_t> routing_of(int rank, int64_t tokens, int64_t k, Routing routing) {
  std::vector<int32_t> idx;
  const CounterRng rng(77, stream_id("ep-routing"));
  for (int64_t t = 0; t < tokens; ++t) {
    std::vector<int32_t> chosen;
    for (uint64_t draw = 0; static_cast<int64_t>(chosen.size()) < k; ++draw) {
      int32_t e = static_cast<int32_t>(rng.bits(static_cast<uint64_t>(rank) * 1'000'003 +
                                                static_cast<uint64_t>(t) * 101 + draw) %
                                       kExperts);
      if (routing == Routing::SomeExpertsIdle) e = (e % 2 == 0) ? 0 : kExperts - 3;  // 0 or 5
      if (routing == Routing::AllToOneExpert) e = kExperts - 1;
      if (std::find(chosen.begin(), chosen.end(), e) == chosen.end()) chosen.push_back(e);
      if (routing != Routing::Random && draw > 64) break;  // fewer distinct experts than k
    }
    while (static_cast<int64_t>(chosen.size()) < k) {  // pad with distinct unused experts
      for (int32_t e = 0; e < kExperts; ++e) {
        if (std::find(chosen.begin(), chosen.end(), e) == chosen.end()) {
          chosen.push_back(e);
          break;
        }
      }
    }
    idx.insert(idx.end(), chosen.begin(), chosen.end());
  }
  return idx;
}

// Row payload: column c of token t on rank r.
float payload(int rank, int64_t token, int64_t column) {
  return static_cast<float>(rank * 100000 + token * 10 + column);
}

std::shared_ptr<Communicator> world_comm() {
  static MpiComm world = MpiComm::world();
  return std::make_shared<MpiBackend>(world);
}

struct Case {
  int64_t tokens;
  int64_t k;
  int64_t chunks;
  Routing routing;
  double capacity_factor = 0.0;
  int64_t seq = 0;
};

void run_case(const Case& cs, const std::shared_ptr<Communicator>& comm) {
  const int rank = world_rank(), P = world_size();
  ASSERT_EQ(kExperts % P, 0);
  DispatcherOptions options;
  options.experts = kExperts;
  options.chunks = cs.chunks;
  options.capacity_factor = cs.capacity_factor;
  const Dispatcher dispatcher(comm, options);
  const int64_t El = dispatcher.local_experts();

  // Tokens per rank differ (rank r has tokens + r), so no count can be assumed equal.
  auto tokens_of = [&](int r) { return cs.tokens + (cs.capacity_factor > 0 ? 0 : r); };
  const int64_t T = tokens_of(rank);
  const std::vector<int32_t> mine = routing_of(rank, T, cs.k, cs.routing);
  const Tensor indices = Tensor::from_ints(mine, {T, cs.k});
  Tensor x = Tensor::empty({T, kWidth});
  for (int64_t t = 0; t < T; ++t) {
    for (int64_t c = 0; c < kWidth; ++c) x.data<float>()[t * kWidth + c] = payload(rank, t, c);
  }
  Tensor weights = Tensor::empty({T, cs.k});
  for (int64_t i = 0; i < T * cs.k; ++i) weights.data<float>()[i] = 0.5f + 0.25f * (i % 3);

  const DispatchLayout layout = dispatcher.plan(indices, cs.seq);
  ASSERT_EQ(static_cast<int64_t>(layout.chunks.size()), cs.chunks);

  // Which slots every rank keeps (capacity per sequence, earlier tokens first).
  auto kept_slots = [&](const std::vector<int32_t>& idx, int64_t tokens) {
    std::vector<bool> kept(idx.size(), true);
    if (cs.capacity_factor <= 0) return kept;
    const int64_t seq = cs.seq > 0 ? cs.seq : tokens;
    const int64_t cap = expert_capacity(cs.capacity_factor, seq, cs.k, kExperts);
    std::vector<int64_t> used(kExperts, 0);
    for (int64_t t = 0; t < tokens; ++t) {
      if (t % seq == 0) std::fill(used.begin(), used.end(), 0);
      for (int64_t j = 0; j < cs.k; ++j) {
        const size_t s = static_cast<size_t>(t * cs.k + j);
        kept[s] = used[static_cast<size_t>(idx[s])]++ < cap;
      }
    }
    return kept;
  };
  const std::vector<bool> my_kept = kept_slots(mine, T);
  int64_t my_dropped = 0;
  for (bool k : my_kept) my_dropped += k ? 0 : 1;
  EXPECT_EQ(layout.dropped_slots, my_dropped);

  Tensor out = Tensor::empty({T, kWidth});
  for (int64_t c = 0; c < cs.chunks; ++c) {
    const ChunkLayout& chunk = layout.chunks[static_cast<size_t>(c)];
    PendingRows pending = dispatcher.dispatch(layout, c, gather_send_rows(chunk, x));
    const Tensor received = pending.wait();

    // Expected rows in expert order: local expert, then sender, then the sender's tokens.
    std::vector<float> expected;
    std::vector<int64_t> per_expert(static_cast<size_t>(El), 0);
    for (int64_t e = 0; e < El; ++e) {
      const int32_t global = static_cast<int32_t>(rank * El + e);
      for (int p = 0; p < P; ++p) {
        const int64_t Tp = tokens_of(p);
        const std::vector<int32_t> theirs = routing_of(p, Tp, cs.k, cs.routing);
        const std::vector<bool> kept = kept_slots(theirs, Tp);
        const int64_t first = c * Tp / cs.chunks, last = (c + 1) * Tp / cs.chunks;
        for (int64_t t = first; t < last; ++t) {
          for (int64_t j = 0; j < cs.k; ++j) {
            const size_t s = static_cast<size_t>(t * cs.k + j);
            if (theirs[s] != global || !kept[s]) continue;
            for (int64_t col = 0; col < kWidth; ++col) expected.push_back(payload(p, t, col));
            ++per_expert[static_cast<size_t>(e)];
          }
        }
      }
    }
    ASSERT_EQ(received.numel(), static_cast<int64_t>(expected.size()))
        << "rank " << rank << " chunk " << c << ": wrong number of rows";
    ASSERT_EQ(chunk.rows_per_local_expert(El), per_expert);
    for (size_t i = 0; i < expected.size(); ++i) {
      ASSERT_EQ(received.data<float>()[i], expected[i])
          << "rank " << rank << " chunk " << c << " row " << i / kWidth
          << ": a misrouted, duplicated or missing token";
    }

    // "Expert" g multiplies its rows by (global id + 1); combine and un-permute.
    Tensor yp = received.clone();
    int64_t row = 0;
    for (int64_t e = 0; e < El; ++e) {
      for (int64_t r = 0; r < per_expert[static_cast<size_t>(e)]; ++r, ++row) {
        for (int64_t col = 0; col < kWidth; ++col) {
          yp.data<float>()[row * kWidth + col] *= static_cast<float>(rank * El + e + 1);
        }
      }
    }
    PendingRows back = dispatcher.combine(layout, c, yp);
    combine_weighted(chunk, cs.k, back.wait(), weights, out);
  }
  for (int64_t t = 0; t < T; ++t) {
    for (int64_t col = 0; col < kWidth; ++col) {
      double want = 0.0;
      for (int64_t j = 0; j < cs.k; ++j) {
        const size_t s = static_cast<size_t>(t * cs.k + j);
        if (!my_kept[s]) continue;
        want +=
            static_cast<double>(weights.data<float>()[s]) * (mine[s] + 1) * payload(rank, t, col);
      }
      ASSERT_NEAR(out.data<float>()[t * kWidth + col], want, 1e-6 * std::abs(want) + 1e-6)
          << "rank " << rank << " token " << t;
    }
  }
}

TEST(Dispatcher, PayloadsArriveOncePerExpertInOrder) {
  for (int64_t chunks : {1, 3}) run_case({13, 2, chunks, Routing::Random}, world_comm());
}

TEST(Dispatcher, ExpertsWithNoTokens) {
  run_case({11, 2, 2, Routing::SomeExpertsIdle}, world_comm());
}

TEST(Dispatcher, EveryTokenToOneExpert) {
  for (int64_t chunks : {1, 4}) run_case({40, 1, chunks, Routing::AllToOneExpert}, world_comm());
}

TEST(Dispatcher, MoreChunksThanTokens) { run_case({2, 2, 5, Routing::Random}, world_comm()); }

TEST(Dispatcher, CapacityDropsLateTokensPerSequence) {
  // k = 1, everything to one expert: capacity ceil(1.25 · 8 / 8) = 2 per sequence of 8.
  run_case({16, 1, 2, Routing::AllToOneExpert, 1.25, 8}, world_comm());
  run_case({16, 2, 1, Routing::Random, 1.0, 8}, world_comm());
}

TEST(Dispatcher, WorksOverADelayedLink) {
  LinkModel link;
  link.latency_us = 200;
  link.gbytes_per_s = 0.5;
  auto delayed = std::make_shared<DelayedLink>(world_comm(), link);
  run_case({9, 2, 3, Routing::Random}, delayed);
}

TEST(DispatcherOptions, NamesTheFieldAtFault) {
  DispatcherOptions options;
  options.experts = 6;
  EXPECT_THROW(options.validate(4), UserError);
  options.experts = 8;
  options.chunks = 0;
  EXPECT_THROW(options.validate(4), UserError);
  options.chunks = 1;
  options.capacity_factor = 0.5;
  EXPECT_THROW(options.validate(4), UserError);
  options.capacity_factor = 0.0;
  EXPECT_NO_THROW(options.validate(4));
}

}  // namespace
}  // namespace trident::parallel::ep
