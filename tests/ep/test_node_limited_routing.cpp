// Node-limited routing in the router (no MPI): every token's experts span at most M nodes, the
// nodes kept are those with the best sums of their top ceil(k / M) biased scores, and a limit
// that every layout satisfies anyway changes nothing.
#include <gtest/gtest.h>

#include <algorithm>
#include <vector>

#include "ops/ops.h"
#include "parallel/ep/dispatch_layout.h"
#include "runtime/core/rng.h"

namespace trident::parallel::ep {
namespace {

struct Routed {
  std::vector<int32_t> indices;
  std::vector<float> weights;
};

Routed route(const ops::RouterSettings& r, const Tensor& logits, const Tensor& bias) {
  const int64_t T = logits.size(0);
  Tensor indices = Tensor::empty({T, r.top_k}, DType::I32);
  Tensor weights = Tensor::empty({T, r.top_k});
  Tensor scores = Tensor::empty({T, r.experts});
  ops::router_forward(r, logits, bias, indices, weights, scores);
  Routed out;
  out.indices.assign(indices.data<int32_t>(), indices.data<int32_t>() + indices.numel());
  out.weights = weights.to_vector();
  return out;
}

Tensor random_logits(int64_t T, int64_t E, uint64_t seed) {
  const CounterRng rng(seed, stream_id("node-limit"));
  std::vector<float> v(static_cast<size_t>(T * E));
  for (size_t i = 0; i < v.size(); ++i) v[i] = rng.normal(i);
  return Tensor::from_vector(v, {T, E});
}

ops::RouterSettings settings(int64_t experts, int64_t top_k, int64_t n_group, int64_t topk_group) {
  ops::RouterSettings r;
  r.experts = experts;
  r.top_k = top_k;
  r.n_group = n_group;
  r.topk_group = topk_group;
  return r;
}

// 32 experts in 8 groups, k = 8 of the best 4 groups, scaled by 2.5.
ops::RouterSettings settings() {
  ops::RouterSettings r = settings(32, 8, 8, 4);
  r.scaling = 2.5f;
  return r;
}

TEST(NodeLimitedRouting, EveryTokenReachesAtMostMNodes) {
  const int64_t T = 200;
  const Tensor logits = random_logits(T, 32, 3);
  const Tensor bias = Tensor::zeros({32});
  for (int64_t per_node : {4, 8, 16}) {
    for (int64_t M : {1, 2, 3}) {
      ops::RouterSettings r = settings();
      r.experts_per_node = per_node;
      r.max_nodes = M;
      if (r.top_k > M * per_node) continue;
      if (32 / per_node <= M) continue;
      auto nodes_of = [&](const Routed& routed, int64_t t) {
        std::vector<int64_t> nodes;
        for (int64_t j = 0; j < r.top_k; ++j) {
          const int64_t node = routed.indices[static_cast<size_t>(t * r.top_k + j)] / per_node;
          if (std::find(nodes.begin(), nodes.end(), node) == nodes.end()) nodes.push_back(node);
        }
        return static_cast<int64_t>(nodes.size());
      };
      const Routed limited = route(r, logits, bias);
      const Routed unlimited = route(settings(), logits, bias);
      int64_t would_exceed = 0;
      for (int64_t t = 0; t < T; ++t) {
        EXPECT_LE(nodes_of(limited, t), M) << "token " << t;
        would_exceed += nodes_of(unlimited, t) > M ? 1 : 0;
      }
      EXPECT_GT(would_exceed, 0) << "the limit never binds: the test could not fail";
    }
  }
}

TEST(NodeLimitedRouting, KeepsTheNodesWithTheBestTopScores) {
  // 2 nodes of 4 experts, k = 2, M = 1: a node scores the sum of its ceil(2/1) = 2 best biased
  // scores. Node 1 holds the single best expert but node 0 the better pair.
  ops::RouterSettings r = settings(8, 2, 1, 1);
  r.experts_per_node = 4;
  r.max_nodes = 1;
  const Tensor logits = Tensor::from_vector({2.0f, 1.9f, -3, -3, 2.2f, -3, -3, -3}, {1, 8});
  const Routed routed = route(r, logits, Tensor::zeros({8}));
  EXPECT_EQ(routed.indices, (std::vector<int32_t>{0, 1}));
}

TEST(NodeLimitedRouting, ALimitThatNeverBindsChangesNothing) {
  const Tensor logits = random_logits(64, 32, 5);
  const Tensor bias = Tensor::zeros({32});
  ops::RouterSettings limited = settings();
  limited.experts_per_node = 4;  // 8 nodes, each one group
  limited.max_nodes = 4;         // = topk_group: the group limit already implies it
  const Routed a = route(settings(), logits, bias);
  const Routed b = route(limited, logits, bias);
  EXPECT_EQ(a.indices, b.indices);
  EXPECT_EQ(a.weights, b.weights);
}

TEST(DispatchLayout, SendOrderIsDestinationExpertThenToken) {
  // 4 tokens, k = 2, E = 4 over 2 ranks.
  const Tensor idx = Tensor::from_ints({3, 0, 1, 3, 0, 2, 3, 1}, {4, 2});
  LayoutOptions o;
  o.experts = 4;
  o.ranks = 2;
  o.chunks = 1;
  const DispatchLayout layout = make_send_layout(idx, o);
  const ChunkLayout& c = layout.chunks[0];
  EXPECT_EQ(c.send_counts, (std::vector<int64_t>{2, 2, 1, 3}));
  EXPECT_EQ(c.send_row_token, (std::vector<int64_t>{0, 2, 1, 3, 2, 0, 1, 3}));
  EXPECT_EQ(c.rows_to_ranks(2), (std::vector<int64_t>{4, 4}));
  // Slot (t, j) -> row: every row used once.
  std::vector<int64_t> rows = c.slot_row;
  std::sort(rows.begin(), rows.end());
  EXPECT_EQ(rows, (std::vector<int64_t>{0, 1, 2, 3, 4, 5, 6, 7}));
}

TEST(DispatchLayout, BlockReorderRoundTrips) {
  const std::vector<int64_t> counts = {1, 0, 2, 3, 0, 1};  // 3 senders × 2 local experts
  std::vector<float> v;
  for (int i = 0; i < 7; ++i) v.push_back(static_cast<float>(i));
  const Tensor src = Tensor::from_vector(v, {7, 1});
  Tensor expert = Tensor::empty({7, 1}), back = Tensor::empty({7, 1});
  sender_major_to_expert_major(src, counts, 3, 2, expert);
  // Sender-major rows: (0,0)=0 | (1,0)=1,2 (1,1)=3,4,5 | (2,1)=6. Expert 0: 0,1,2; expert 1:
  // 3,4,5,6.
  EXPECT_EQ(expert.to_vector(), (std::vector<float>{0, 1, 2, 3, 4, 5, 6}));
  const std::vector<int64_t> mixed = {2, 1, 0, 3, 1, 0};
  sender_major_to_expert_major(src, mixed, 3, 2, expert);
  // Sender-major: (0,0)=0,1 (0,1)=2 (1,1)=3,4,5 (2,0)=6 -> expert 0: 0,1,6; expert 1: 2,3,4,5.
  EXPECT_EQ(expert.to_vector(), (std::vector<float>{0, 1, 6, 2, 3, 4, 5}));
  expert_major_to_sender_major(expert, mixed, 3, 2, back);
  EXPECT_EQ(back.to_vector(), v);
}

}  // namespace
}  // namespace trident::parallel::ep
