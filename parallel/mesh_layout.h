#pragma once
// The rank arithmetic of the device mesh, with no MPI in it, so every layout can be checked
// on one process.
//
// Dense and attention layers see world = PP × DP × TP with TP innermost:
//     rank = ((pp · DP) + dp) · TP + tp
// so the ranks of a TP group are consecutive and stay inside a node. Inside each pipeline
// stage the same DP × TP ranks are refolded for the MoE layers as EDP × EP × ETP with ETP
// innermost:
//     stage_rank = dp · TP + tp = ((edp · EP) + ep) · ETP + etp,   EDP = DP · TP / (EP · ETP)
// An axis group is the set of ranks that differ only in that axis' coordinate.

#include <cstdint>
#include <string>
#include <vector>

namespace trident::config {
class ParallelConfig;
}

namespace trident::parallel {

struct MeshSizes {
  int pp = 1;
  int dp = 1;
  int tp = 1;
  int ep = 1;
  int etp = 1;
};

MeshSizes mesh_sizes_from_config(const config::ParallelConfig& parallel);

enum class MeshAxis { World, Pp, Dp, Tp, Ep, Etp, Edp, Stage };
const char* mesh_axis_name(MeshAxis axis);  // "pp", "stage", ...
constexpr MeshAxis kAllMeshAxes[] = {MeshAxis::World, MeshAxis::Pp,  MeshAxis::Dp,
                                     MeshAxis::Tp,    MeshAxis::Ep,  MeshAxis::Etp,
                                     MeshAxis::Edp,   MeshAxis::Stage};

struct MeshCoords {
  int rank = 0;
  int pp = 0;
  int dp = 0;
  int tp = 0;
  int stage_rank = 0;  // index inside the pipeline stage: dp · TP + tp
  int edp = 0;
  int ep = 0;
  int etp = 0;
};

// Where one rank sits in one axis group: which MPI_Comm_split color it joins, its index
// there, and the world ranks of all members in group order.
struct AxisGroup {
  int color = 0;
  int index = 0;
  std::vector<int> world_ranks;
  std::string name;  // "tp[pp=0,dp=1]"
};

class MeshLayout {
 public:
  // Validates the sizes against the number of ranks started; a mismatch is a UserError
  // naming the fields, so every rank fails the same way before any communicator exists.
  MeshLayout(const MeshSizes& sizes, int world_size);

  const MeshSizes& sizes() const { return sizes_; }
  int world_size() const { return world_size_; }
  int stage_size() const { return sizes_.dp * sizes_.tp; }
  int edp() const { return edp_; }
  int axis_size(MeshAxis axis) const;

  MeshCoords coords(int rank) const;
  int rank_of(int pp, int dp, int tp) const;
  int rank_of_moe(int pp, int edp, int ep, int etp) const;
  AxisGroup group(MeshAxis axis, int rank) const;

 private:
  int color(MeshAxis axis, const MeshCoords& c) const;
  int key(MeshAxis axis, const MeshCoords& c) const;
  std::string group_name(MeshAxis axis, const MeshCoords& c) const;

  MeshSizes sizes_;
  int world_size_ = 1;
  int edp_ = 1;
};

}  // namespace trident::parallel
