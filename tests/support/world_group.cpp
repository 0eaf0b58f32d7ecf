#include "tests/support/world_group.h"

#include "runtime/config/config.h"
#include "tests/support/mpi_helpers.h"

namespace trident::testing {

WorldGroup::WorldGroup(WorldAxes axes)
    : config(config::load_config(config::resolve_config_path("tiny"))) {
  const int world = world_size();
  config::ParallelConfig& p = *config.mutable_parallel();
  p.set_dp(axes == WorldAxes::Ep ? world : 1);
  p.set_tp(axes == WorldAxes::Ep ? 1 : world);
  p.set_ep(axes == WorldAxes::Tp ? 1 : world);
  context = parallel::make_parallel_context(config);
  comm = context->shared_group(axes == WorldAxes::Ep ? parallel::MeshAxis::Ep
                                                     : parallel::MeshAxis::Tp);
}

}  // namespace trident::testing
