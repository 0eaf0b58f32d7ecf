#include "parallel/mesh.h"

#include <mpi.h>

#include <algorithm>
#include <set>
#include <sstream>

#include "parallel/gather.h"
#include "runtime/core/error.h"
#include "runtime/core/logging.h"

namespace trident::parallel {

namespace {
int world_size_of_mpi() {
  int size = 0;
  TRIDENT_CHECK_MPI(MPI_Comm_size(MPI_COMM_WORLD, &size));
  return size;
}
int world_rank_of_mpi() {
  int rank = 0;
  TRIDENT_CHECK_MPI(MPI_Comm_rank(MPI_COMM_WORLD, &rank));
  return rank;
}
}  // namespace

Mesh::Mesh(const MeshSizes& sizes, const MeshOptions& options)
    : layout_(sizes, world_size_of_mpi()), coords_(layout_.coords(world_rank_of_mpi())) {
  TRIDENT_USER_CHECK(options.ranks_per_node >= 0, "parallel.ranks_per_node = ",
                     options.ranks_per_node, " must be 0 (derive from host names) or positive");
  groups_.resize(std::size(kAllMeshAxes));
  comm::MpiComm world = comm::MpiComm::world();
  for (MeshAxis axis : kAllMeshAxes) {
    const AxisGroup g = layout_.group(axis, coords_.rank);
    comm::MpiComm comm = axis == MeshAxis::World
                             ? comm::MpiComm::world()
                             : comm::MpiComm::split(world, g.color, g.index, g.name);
    TRIDENT_CHECK(comm.rank() == g.index && comm.world_ranks() == g.world_ranks,
                  "MPI_Comm_split disagrees with the mesh layout for ", g.name);
    groups_[static_cast<size_t>(axis)] = std::move(comm);
  }

  if (options.ranks_per_node > 0) {
    const int node = coords_.rank / options.ranks_per_node;
    node_ = comm::MpiComm::split(world, node, coords_.rank, "node[" + std::to_string(node) + "]");
  } else {
    MPI_Comm shared = MPI_COMM_NULL;
    TRIDENT_CHECK_MPI(
        MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, coords_.rank, MPI_INFO_NULL,
                            &shared));
    node_ = comm::MpiComm(shared, "node");
  }
  // Number nodes by their lowest world rank so node indices follow rank order.
  const int leader = node_.world_rank_of(0);
  std::vector<int> leaders(static_cast<size_t>(world_size()));
  TRIDENT_CHECK_MPI(MPI_Allgather(&leader, 1, MPI_INT, leaders.data(), 1, MPI_INT, MPI_COMM_WORLD));
  std::vector<int> distinct = leaders;
  std::sort(distinct.begin(), distinct.end());
  distinct.erase(std::unique(distinct.begin(), distinct.end()), distinct.end());
  num_nodes_ = static_cast<int>(distinct.size());
  node_of_rank_.resize(leaders.size());
  for (size_t r = 0; r < leaders.size(); ++r) {
    node_of_rank_[r] = static_cast<int>(
        std::lower_bound(distinct.begin(), distinct.end(), leaders[r]) - distinct.begin());
  }
  if (spans_nodes(MeshAxis::Tp) && coords_.rank == 0) {
    TLOG_WARN("tensor-parallel groups span nodes (parallel.tp = ", sizes.tp, ", ",
              node_.size(), " ranks on node 0): TP traffic will cross the inter-node link");
  }
}

const comm::MpiComm& Mesh::group(MeshAxis axis) const { return groups_[static_cast<size_t>(axis)]; }

bool Mesh::spans_nodes(MeshAxis axis) const {
  const int mine = node_index();
  for (int member : group(axis).world_ranks()) {
    if (node_of(member) != mine) return true;
  }
  return false;
}

std::string Mesh::describe() const {
  std::ostringstream out;
  const MeshCoords& c = coords_;
  out << "rank " << c.rank << ": pp=" << c.pp << " dp=" << c.dp << " tp=" << c.tp
      << " | edp=" << c.edp << " ep=" << c.ep << " etp=" << c.etp << " | node " << node_index()
      << "/" << num_nodes_;
  for (MeshAxis axis : kAllMeshAxes) {
    if (axis == MeshAxis::World) continue;
    const comm::MpiComm& g = group(axis);
    out << " | " << g.name() << "={";
    for (size_t i = 0; i < g.world_ranks().size(); ++i) out << (i ? "," : "") << g.world_ranks()[i];
    out << "}";
  }
  return out.str();
}

std::string Mesh::layout_table() const {
  const std::vector<std::string> lines = gather_strings(describe(), MPI_COMM_WORLD);
  if (coords_.rank != 0) return {};
  std::ostringstream out;
  const MeshSizes& s = layout_.sizes();
  out << "mesh pp=" << s.pp << " dp=" << s.dp << " tp=" << s.tp << " (moe: edp=" << layout_.edp()
      << " ep=" << s.ep << " etp=" << s.etp << "), " << world_size() << " ranks on " << num_nodes_
      << " node(s)\n";
  for (const std::string& line : lines) out << "  " << line << "\n";
  return out.str();
}

}  // namespace trident::parallel
