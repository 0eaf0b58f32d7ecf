// The parallel context under mpirun: one communicator per axis group of two or more ranks and
// none for groups of one, sizes and ranks that agree with the mesh layout, the one-rank context
// without MPI, and the refusals of layouts this build does not run, before any communicator
// exists and with the field named.
#include <gtest/gtest.h>

#include <string>

#include "parallel/context.h"
#include "runtime/config/config.h"
#include "runtime/core/error.h"
#include "tests/support/mpi_helpers.h"

namespace trident::parallel {
namespace {

using trident::testing::world_rank;
using trident::testing::world_size;

config::TridentConfig config_with(int dp, int tp, int ep) {
  config::TridentConfig config = config::load_config(config::resolve_config_path("tiny"));
  config.mutable_parallel()->set_dp(dp);
  config.mutable_parallel()->set_tp(tp);
  config.mutable_parallel()->set_ep(ep);
  return config;
}

TEST(ParallelContext, OneCommunicatorPerGroupOfSeveralRanks) {
  const int world = world_size();
  const auto context = make_parallel_context(config_with(world / 2, 2, 2));
  EXPECT_EQ(context->coords().rank, world_rank());
  EXPECT_EQ(context->primary(), world_rank() == 0);
  for (const MeshAxis axis : kAllMeshAxes) {
    SCOPED_TRACE(mesh_axis_name(axis));
    const int size = context->layout().axis_size(axis);
    EXPECT_EQ(context->size(axis), size);
    if (size < 2) {
      EXPECT_EQ(context->group(axis), nullptr);
      EXPECT_EQ(context->rank(axis), 0);
    } else {
      ASSERT_NE(context->group(axis), nullptr);
      EXPECT_EQ(context->group(axis)->size(), size);
      EXPECT_EQ(context->rank(axis), context->layout().group(axis, context->coords().rank).index);
    }
  }
  EXPECT_EQ(context->pp(), nullptr);  // pp = 1
  ASSERT_NE(context->tp(), nullptr);
  EXPECT_EQ(context->tp()->size(), 2);
}

TEST(ParallelContext, OneRankNeedsNoCommunicator) {
  const ParallelContext& one = ParallelContext::one_rank();
  for (const MeshAxis axis : kAllMeshAxes) {
    EXPECT_EQ(one.group(axis), nullptr);
    EXPECT_EQ(one.size(axis), 1);
  }
  EXPECT_TRUE(one.primary());
  EXPECT_EQ(one.mesh(), nullptr);
}

TEST(ParallelContext, RefusesWhatThisBuildDoesNotRun) {
  const int world = world_size();
  config::TridentConfig etp = config_with(world, 1, 1);
  etp.mutable_parallel()->set_etp(2);
  try {
    make_parallel_context(etp);
    FAIL() << "parallel.etp = 2 was accepted";
  } catch (const UserError& e) {
    EXPECT_NE(std::string(e.what()).find("parallel.etp = 2"), std::string::npos) << e.what();
  }
  config::TridentConfig capacity = config_with(world / 2, 2, 2);
  capacity.mutable_parallel()->set_capacity_factor(1.25);
  EXPECT_THROW(make_parallel_context(capacity), UserError);
  // The same layout without a capacity runs.
  EXPECT_NO_THROW(make_parallel_context(config_with(world / 2, 2, 2)));
}

}  // namespace
}  // namespace trident::parallel
