// require_on_every_rank: a set-up step that failed on some ranks stops every rank, each with a
// message that says where it failed and why (the failing rank) or who failed (the others).
#include <gtest/gtest.h>

#include <string>

#include "parallel/comm/rank_agreement.h"
#include "tests/support/expect_user_error.h"
#include "tests/support/mpi_helpers.h"

namespace trident::parallel::comm {
namespace {

using trident::testing::expect_user_error;
using trident::testing::world_rank;
using trident::testing::world_size;

TEST(RankAgreement, ReturnsWhenEveryRankSucceeded) {
  require_on_every_rank(MpiComm::world(), "", "binding a GPU");
}

TEST(RankAgreement, OneFailedRankStopsEveryRank) {
  const int last = world_size() - 1;
  const std::string problem = world_rank() == last ? "no CUDA device (driver missing)" : "";
  if (world_rank() == last) {
    expect_user_error([&] { require_on_every_rank(MpiComm::world(), problem, "binding a GPU"); },
                      {"binding a GPU failed on rank " + std::to_string(last),
                       "no CUDA device (driver missing)"});
  } else {
    expect_user_error(
        [&] { require_on_every_rank(MpiComm::world(), problem, "binding a GPU"); },
        {"binding a GPU failed on rank " + std::to_string(last), "this rank stops with it"});
  }
}

TEST(RankAgreement, FailuresEverywhereAreSaidOnce) {
  const std::string problem = "rank " + std::to_string(world_rank()) + " has no GPU";
  expect_user_error([&] { require_on_every_rank(MpiComm::world(), problem, "binding a GPU"); },
                    {problem, "(on every rank)"});
}

// Two of several ranks fail: each names the other as well.
TEST(RankAgreement, SeveralFailedRanksAreNamed) {
  if (world_size() < 3) GTEST_SKIP() << "needs 3 ranks or more";
  const bool fails = world_rank() < 2;
  const std::string problem = fails ? "rank " + std::to_string(world_rank()) + " has no GPU" : "";
  expect_user_error([&] { require_on_every_rank(MpiComm::world(), problem, "binding a GPU"); },
                    {fails ? problem + " (it failed on rank 0, rank 1)"
                           : "binding a GPU failed on rank 0, rank 1 of world; this rank stops "
                             "with them"});
}

}  // namespace
}  // namespace trident::parallel::comm
