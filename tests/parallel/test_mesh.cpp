#include <gtest/gtest.h>
#include <mpi.h>

#include <algorithm>
#include <set>

#include "parallel/mesh.h"
#include "runtime/core/error.h"
#include "tests/support/expect_user_error.h"
#include "tests/support/mpi_helpers.h"

namespace trident::parallel {
namespace {

using trident::testing::expect_user_error;
using trident::testing::world_rank;
using trident::testing::world_size;

MeshSizes sizes(int pp, int dp, int tp, int ep = 1, int etp = 1) {
  MeshSizes s;
  s.pp = pp;
  s.dp = dp;
  s.tp = tp;
  s.ep = ep;
  s.etp = etp;
  return s;
}

const MeshSizes kLayouts[] = {
    sizes(1, 2, 1),       sizes(2, 1, 1),       sizes(1, 1, 2),       sizes(1, 2, 1, 2),
    sizes(1, 1, 2, 1, 2), sizes(2, 2, 1),       sizes(1, 2, 2, 4),    sizes(1, 1, 4, 2, 2),
    sizes(4, 1, 1),       sizes(1, 4, 1, 2),    sizes(2, 1, 2, 2),    sizes(1, 2, 2, 2, 2),
    sizes(2, 2, 2, 2, 2), sizes(1, 4, 2, 8),    sizes(2, 4, 2, 2, 4), sizes(1, 8, 1, 4),
};

std::string layout_name(const MeshSizes& s) {
  return "pp" + std::to_string(s.pp) + "·dp" + std::to_string(s.dp) + "·tp" +
         std::to_string(s.tp) + " ep" + std::to_string(s.ep) + " etp" + std::to_string(s.etp);
}

TEST(MeshLayout, WorkedExampleEightRanks) {
  const MeshLayout layout(sizes(2, 2, 2, 2, 2), 8);
  EXPECT_EQ(layout.edp(), 1);
  const MeshCoords c = layout.coords(5);  // 5 = ((1·2)+0)·2+1
  EXPECT_EQ(c.pp, 1);
  EXPECT_EQ(c.dp, 0);
  EXPECT_EQ(c.tp, 1);
  EXPECT_EQ(c.stage_rank, 1);
  EXPECT_EQ(c.edp, 0);
  EXPECT_EQ(c.ep, 0);
  EXPECT_EQ(c.etp, 1);
  EXPECT_EQ(layout.group(MeshAxis::Tp, 5).world_ranks, (std::vector<int>{4, 5}));
  EXPECT_EQ(layout.group(MeshAxis::Dp, 5).world_ranks, (std::vector<int>{5, 7}));
  EXPECT_EQ(layout.group(MeshAxis::Pp, 5).world_ranks, (std::vector<int>{1, 5}));
  EXPECT_EQ(layout.group(MeshAxis::Stage, 5).world_ranks, (std::vector<int>{4, 5, 6, 7}));
  EXPECT_EQ(layout.group(MeshAxis::Ep, 5).world_ranks, (std::vector<int>{5, 7}));
  EXPECT_EQ(layout.group(MeshAxis::Etp, 5).world_ranks, (std::vector<int>{4, 5}));
  EXPECT_EQ(layout.group(MeshAxis::Edp, 5).world_ranks, (std::vector<int>{5}));
  EXPECT_EQ(layout.group(MeshAxis::Tp, 5).name, "tp[pp=1,dp=0]");
}

TEST(MeshLayout, MoeRefoldWithEpAcrossDpAndTp) {
  // pp1·dp2·tp2 with ep 4: one expert-parallel group spanning the whole stage.
  const MeshLayout layout(sizes(1, 2, 2, 4), 4);
  EXPECT_EQ(layout.edp(), 1);
  for (int r = 0; r < 4; ++r) {
    EXPECT_EQ(layout.coords(r).ep, r);
    EXPECT_EQ(layout.group(MeshAxis::Ep, r).world_ranks, (std::vector<int>{0, 1, 2, 3}));
    EXPECT_EQ(layout.group(MeshAxis::Edp, r).world_ranks, (std::vector<int>{r}));
  }
  // pp1·dp4·tp1 with ep 2: two expert-data-parallel replicas of a 2-way expert split.
  const MeshLayout folded(sizes(1, 4, 1, 2), 4);
  EXPECT_EQ(folded.edp(), 2);
  EXPECT_EQ(folded.group(MeshAxis::Ep, 2).world_ranks, (std::vector<int>{2, 3}));
  EXPECT_EQ(folded.group(MeshAxis::Edp, 2).world_ranks, (std::vector<int>{0, 2}));
}

TEST(MeshLayout, EveryLayoutPartitionsTheWorldConsistently) {
  for (const MeshSizes& s : kLayouts) {
    const int world = s.pp * s.dp * s.tp;
    const MeshLayout layout(s, world);
    SCOPED_TRACE(layout_name(s));
    EXPECT_EQ(layout.edp() * s.ep * s.etp, s.dp * s.tp);
    for (int r = 0; r < world; ++r) {
      const MeshCoords c = layout.coords(r);
      EXPECT_EQ(layout.rank_of(c.pp, c.dp, c.tp), r);
      EXPECT_EQ(layout.rank_of_moe(c.pp, c.edp, c.ep, c.etp), r);
      // TP is innermost: a TP group is a run of consecutive ranks.
      const std::vector<int> tp = layout.group(MeshAxis::Tp, r).world_ranks;
      for (size_t i = 1; i < tp.size(); ++i) EXPECT_EQ(tp[i], tp[i - 1] + 1);
    }
    for (MeshAxis axis : kAllMeshAxes) {
      std::multiset<int> covered;
      std::set<int> colors;
      for (int r = 0; r < world; ++r) {
        const AxisGroup g = layout.group(axis, r);
        ASSERT_EQ(static_cast<int>(g.world_ranks.size()), layout.axis_size(axis));
        EXPECT_EQ(g.world_ranks[static_cast<size_t>(g.index)], r) << mesh_axis_name(axis);
        if (colors.insert(g.color).second) covered.insert(g.world_ranks.begin(), g.world_ranks.end());
        // Members of one group share every coordinate but this axis'.
        for (int member : g.world_ranks) {
          EXPECT_EQ(layout.group(axis, member).color, g.color) << mesh_axis_name(axis);
        }
      }
      EXPECT_EQ(static_cast<int>(covered.size()), world) << mesh_axis_name(axis);
      EXPECT_EQ(static_cast<int>(std::set<int>(covered.begin(), covered.end()).size()), world)
          << mesh_axis_name(axis) << ": groups overlap";
    }
  }
}

TEST(MeshLayout, ValidationNamesTheFields) {
  expect_user_error([] { MeshLayout layout(sizes(2, 3, 1), 4); },
                    {"parallel.pp × parallel.dp × parallel.tp = 6 does not match the 4 ranks "
                     "started"});
  expect_user_error([] { MeshLayout layout(sizes(1, 2, 2, 3), 4); },
                    {"parallel.ep × parallel.etp = 3 must divide parallel.dp × parallel.tp = 4"});
  EXPECT_THROW(MeshLayout(sizes(1, 0, 4), 4), UserError);
  EXPECT_THROW(MeshLayout(sizes(1, 1, 4, 4, 2), 4), UserError);
}

// Checks membership the way MPI sees it: a sum over the real communicator.
int64_t sum_of_world_ranks(const comm::MpiComm& comm) {
  int64_t mine = world_rank();
  int64_t sum = 0;
  MPI_Allreduce(&mine, &sum, 1, MPI_INT64_T, MPI_SUM, comm.get());
  return sum;
}

TEST(Mesh, GroupsMatchTheLayoutForEveryFittingLayout) {
  int tried = 0;
  for (const MeshSizes& s : kLayouts) {
    if (s.pp * s.dp * s.tp != world_size()) continue;
    SCOPED_TRACE(layout_name(s));
    ++tried;
    MeshOptions options;
    options.ranks_per_node = 2;
    const Mesh mesh(s, options);
    const MeshLayout& layout = mesh.layout();
    EXPECT_EQ(mesh.coords().rank, world_rank());
    for (MeshAxis axis : kAllMeshAxes) {
      const AxisGroup expected = layout.group(axis, world_rank());
      const comm::MpiComm& comm = mesh.group(axis);
      EXPECT_EQ(comm.world_ranks(), expected.world_ranks) << mesh_axis_name(axis);
      EXPECT_EQ(comm.rank(), expected.index) << mesh_axis_name(axis);
      int64_t expected_sum = 0;
      for (int member : expected.world_ranks) expected_sum += member;
      EXPECT_EQ(sum_of_world_ranks(comm), expected_sum) << mesh_axis_name(axis);
      const bool crosses = std::any_of(expected.world_ranks.begin(), expected.world_ranks.end(),
                                       [](int m) { return m / 2 != world_rank() / 2; });
      EXPECT_EQ(mesh.spans_nodes(axis), crosses) << mesh_axis_name(axis);
    }
    EXPECT_EQ(mesh.node_index(), world_rank() / 2);
    EXPECT_EQ(mesh.num_nodes(), (world_size() + 1) / 2);
    EXPECT_EQ(mesh.node().size(), std::min(2, world_size()));
    const std::string table = mesh.layout_table();
    if (world_rank() == 0) {
      EXPECT_NE(table.find("rank " + std::to_string(world_size() - 1) + ": pp="),
                std::string::npos)
          << table;
    } else {
      EXPECT_TRUE(table.empty());
    }
  }
  EXPECT_GE(tried, 2) << "no layout list entry fits " << world_size() << " ranks";
}

TEST(Mesh, HostNameNodeGroupingPutsEveryRankOnThisHost) {
  const Mesh mesh(sizes(1, world_size(), 1));
  EXPECT_EQ(mesh.num_nodes(), 1);
  EXPECT_EQ(mesh.node().size(), world_size());
  EXPECT_FALSE(mesh.spans_nodes(MeshAxis::World));
}

TEST(Mesh, BadLayoutFailsOnEveryRankBeforeAnyCommunicator) {
  expect_user_error([] { const Mesh mesh(sizes(3, 1, 1)); },
                    {"= 3 does not match the " + std::to_string(world_size()) + " ranks started"});
  // Every rank threw at the same point, so the world is still in step.
  MPI_Barrier(MPI_COMM_WORLD);
}

}  // namespace
}  // namespace trident::parallel
