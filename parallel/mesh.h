#pragma once
// The device mesh of a run: the layout arithmetic (mesh_layout.h) made real as one MPI
// communicator per axis group this rank belongs to, plus the node it runs on.
//
// Construction is collective over the parent communicator (normally the world). The sizes
// are validated first, identically on every rank, so a bad layout throws the same UserError
// everywhere before any MPI_Comm_split is issued.

#include <string>
#include <vector>

#include "parallel/comm/mpi_comm.h"
#include "parallel/mesh_layout.h"

namespace trident::parallel {

struct MeshOptions {
  // 0: group ranks into nodes by shared memory (MPI_Comm_split_type with the host's
  // processes); N > 0: pretend every N consecutive world ranks share a node (tests, planning).
  int ranks_per_node = 0;
};

class Mesh {
 public:
  explicit Mesh(const MeshSizes& sizes, const MeshOptions& options = {});
  Mesh(const Mesh&) = delete;
  Mesh& operator=(const Mesh&) = delete;

  const MeshLayout& layout() const { return layout_; }
  const MeshCoords& coords() const { return coords_; }
  int rank() const { return coords_.rank; }
  int world_size() const { return layout_.world_size(); }

  const comm::MpiComm& group(MeshAxis axis) const;
  const comm::MpiComm& world() const { return group(MeshAxis::World); }
  const comm::MpiComm& pp() const { return group(MeshAxis::Pp); }
  const comm::MpiComm& dp() const { return group(MeshAxis::Dp); }
  const comm::MpiComm& tp() const { return group(MeshAxis::Tp); }
  const comm::MpiComm& ep() const { return group(MeshAxis::Ep); }
  const comm::MpiComm& etp() const { return group(MeshAxis::Etp); }
  const comm::MpiComm& edp() const { return group(MeshAxis::Edp); }
  const comm::MpiComm& stage() const { return group(MeshAxis::Stage); }

  // Ranks on this rank's node, its index there, and which node every world rank is on.
  const comm::MpiComm& node() const { return node_; }
  int node_index() const { return node_of_rank_[static_cast<size_t>(coords_.rank)]; }
  int num_nodes() const { return num_nodes_; }
  int node_of(int world_rank) const { return node_of_rank_[static_cast<size_t>(world_rank)]; }
  // Whether this rank's group along `axis` has members on another node (its traffic crosses
  // the slower inter-node link).
  bool spans_nodes(MeshAxis axis) const;

  // One line describing this rank: coordinates, node, and each group's members.
  std::string describe() const;
  // Collective over the world: rank 0 gets every rank's describe() line in rank order
  // (the others get an empty string).
  std::string layout_table() const;

 private:
  MeshLayout layout_;
  MeshCoords coords_;
  std::vector<comm::MpiComm> groups_;  // indexed by MeshAxis
  comm::MpiComm node_;
  std::vector<int> node_of_rank_;
  int num_nodes_ = 1;
};

}  // namespace trident::parallel
