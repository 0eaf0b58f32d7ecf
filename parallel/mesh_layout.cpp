#include "parallel/mesh_layout.h"

#include <algorithm>
#include <sstream>

#include "runtime/config/trident.pb.h"
#include "runtime/core/error.h"

namespace trident::parallel {

MeshSizes mesh_sizes_from_config(const config::ParallelConfig& parallel) {
  // proto3 leaves unset sizes at 0; 0 means "not split along this axis".
  auto size_or_one = [](int64_t value) { return value == 0 ? 1 : static_cast<int>(value); };
  MeshSizes sizes;
  sizes.pp = size_or_one(parallel.pp());
  sizes.dp = size_or_one(parallel.dp());
  sizes.tp = size_or_one(parallel.tp());
  sizes.ep = size_or_one(parallel.ep());
  sizes.etp = size_or_one(parallel.etp());
  return sizes;
}

const char* mesh_axis_name(MeshAxis axis) {
  switch (axis) {
    case MeshAxis::World: return "world";
    case MeshAxis::Pp: return "pp";
    case MeshAxis::Dp: return "dp";
    case MeshAxis::Tp: return "tp";
    case MeshAxis::Ep: return "ep";
    case MeshAxis::Etp: return "etp";
    case MeshAxis::Edp: return "edp";
    case MeshAxis::Stage: return "stage";
  }
  return "?";
}

MeshLayout::MeshLayout(const MeshSizes& sizes, int world_size)
    : sizes_(sizes), world_size_(world_size) {
  const struct {
    const char* field;
    int value;
  } fields[] = {{"parallel.pp", sizes.pp},
                {"parallel.dp", sizes.dp},
                {"parallel.tp", sizes.tp},
                {"parallel.ep", sizes.ep},
                {"parallel.etp", sizes.etp}};
  for (const auto& field : fields) {
    TRIDENT_USER_CHECK(field.value >= 1, field.field, " = ", field.value,
                       " must be at least 1 (1 means the axis is not split)");
  }
  const int64_t product = int64_t{sizes.pp} * sizes.dp * sizes.tp;
  TRIDENT_USER_CHECK(product == world_size, "parallel.pp × parallel.dp × parallel.tp = ", product,
                     " does not match the ", world_size, " ranks started (pp ", sizes.pp,
                     " × dp ", sizes.dp, " × tp ", sizes.tp, "); choose sizes whose product is ",
                     world_size, " or start ", product, " ranks");
  const int64_t expert_block = int64_t{sizes.ep} * sizes.etp;
  const int64_t stage = int64_t{sizes.dp} * sizes.tp;
  TRIDENT_USER_CHECK(stage % expert_block == 0, "parallel.ep × parallel.etp = ", expert_block,
                     " must divide parallel.dp × parallel.tp = ", stage,
                     " (the MoE layers refold each stage's dp × tp ranks as edp × ep × etp)");
  edp_ = static_cast<int>(stage / expert_block);
}

int MeshLayout::axis_size(MeshAxis axis) const {
  switch (axis) {
    case MeshAxis::World: return world_size_;
    case MeshAxis::Pp: return sizes_.pp;
    case MeshAxis::Dp: return sizes_.dp;
    case MeshAxis::Tp: return sizes_.tp;
    case MeshAxis::Ep: return sizes_.ep;
    case MeshAxis::Etp: return sizes_.etp;
    case MeshAxis::Edp: return edp_;
    case MeshAxis::Stage: return stage_size();
  }
  return 1;
}

MeshCoords MeshLayout::coords(int rank) const {
  TRIDENT_CHECK(rank >= 0 && rank < world_size_, "rank ", rank, " outside world of ", world_size_);
  MeshCoords c;
  c.rank = rank;
  c.tp = rank % sizes_.tp;
  c.dp = (rank / sizes_.tp) % sizes_.dp;
  c.pp = rank / (sizes_.tp * sizes_.dp);
  c.stage_rank = c.dp * sizes_.tp + c.tp;
  c.etp = c.stage_rank % sizes_.etp;
  c.ep = (c.stage_rank / sizes_.etp) % sizes_.ep;
  c.edp = c.stage_rank / (sizes_.etp * sizes_.ep);
  return c;
}

int MeshLayout::rank_of(int pp, int dp, int tp) const {
  return (pp * sizes_.dp + dp) * sizes_.tp + tp;
}

int MeshLayout::rank_of_moe(int pp, int edp, int ep, int etp) const {
  return pp * stage_size() + (edp * sizes_.ep + ep) * sizes_.etp + etp;
}

int MeshLayout::color(MeshAxis axis, const MeshCoords& c) const {
  switch (axis) {
    case MeshAxis::World: return 0;
    case MeshAxis::Pp: return c.stage_rank;
    case MeshAxis::Dp: return c.pp * sizes_.tp + c.tp;
    case MeshAxis::Tp: return c.pp * sizes_.dp + c.dp;
    case MeshAxis::Stage: return c.pp;
    case MeshAxis::Ep: return (c.pp * edp_ + c.edp) * sizes_.etp + c.etp;
    case MeshAxis::Etp: return (c.pp * edp_ + c.edp) * sizes_.ep + c.ep;
    case MeshAxis::Edp: return (c.pp * sizes_.ep + c.ep) * sizes_.etp + c.etp;
  }
  return 0;
}

int MeshLayout::key(MeshAxis axis, const MeshCoords& c) const {
  switch (axis) {
    case MeshAxis::World: return c.rank;
    case MeshAxis::Pp: return c.pp;
    case MeshAxis::Dp: return c.dp;
    case MeshAxis::Tp: return c.tp;
    case MeshAxis::Stage: return c.stage_rank;
    case MeshAxis::Ep: return c.ep;
    case MeshAxis::Etp: return c.etp;
    case MeshAxis::Edp: return c.edp;
  }
  return 0;
}

std::string MeshLayout::group_name(MeshAxis axis, const MeshCoords& c) const {
  std::ostringstream out;
  out << mesh_axis_name(axis);
  switch (axis) {
    case MeshAxis::World: break;
    case MeshAxis::Pp: out << "[dp=" << c.dp << ",tp=" << c.tp << "]"; break;
    case MeshAxis::Dp: out << "[pp=" << c.pp << ",tp=" << c.tp << "]"; break;
    case MeshAxis::Tp: out << "[pp=" << c.pp << ",dp=" << c.dp << "]"; break;
    case MeshAxis::Stage: out << "[pp=" << c.pp << "]"; break;
    case MeshAxis::Ep: out << "[pp=" << c.pp << ",edp=" << c.edp << ",etp=" << c.etp << "]"; break;
    case MeshAxis::Etp: out << "[pp=" << c.pp << ",edp=" << c.edp << ",ep=" << c.ep << "]"; break;
    case MeshAxis::Edp: out << "[pp=" << c.pp << ",ep=" << c.ep << ",etp=" << c.etp << "]"; break;
  }
  return out.str();
}

AxisGroup MeshLayout::group(MeshAxis axis, int rank) const {
  const MeshCoords mine = coords(rank);
  AxisGroup group;
  group.color = color(axis, mine);
  group.index = key(axis, mine);
  group.name = group_name(axis, mine);
  group.world_ranks.assign(static_cast<size_t>(axis_size(axis)), -1);
  for (int other = 0; other < world_size_; ++other) {
    const MeshCoords c = coords(other);
    if (color(axis, c) == group.color) group.world_ranks[static_cast<size_t>(key(axis, c))] = other;
  }
  TRIDENT_CHECK(std::count(group.world_ranks.begin(), group.world_ranks.end(), -1) == 0,
                "axis ", mesh_axis_name(axis), " group of rank ", rank, " is incomplete");
  return group;
}

}  // namespace trident::parallel
