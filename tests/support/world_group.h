#pragma once
// The whole job as one group of the tiny test model's parallel context, for tests of the model's
// TP and EP layers against one rank: tensor-parallel (tp = world size), expert-parallel
// (dp = ep = world size), or both at once (tp = ep = world size: the EP group is the TP group).
#include <memory>

#include "parallel/context.h"
#include "runtime/config/trident.pb.h"

namespace trident::testing {

enum class WorldAxes { Tp, Ep, TpAndEp };

struct WorldGroup {
  explicit WorldGroup(WorldAxes axes = WorldAxes::Tp);

  config::TridentConfig config;  // the tiny model with this layout
  std::unique_ptr<parallel::ParallelContext> context;
  // The world-sized group: tp for Tp and TpAndEp, ep for Ep.
  std::shared_ptr<parallel::comm::Communicator> comm;
  int rank() const { return comm->rank(); }
  int size() const { return comm->size(); }
};

}  // namespace trident::testing
