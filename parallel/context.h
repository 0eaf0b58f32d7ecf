#pragma once
// The one parallel context of a run: every communication group this rank belongs to, built once
// from the mesh and handed to everything that trains, evaluates, generates or benchmarks. Nothing
// else splits communicators for the mesh, so a group is set up (and traced) the same way
// everywhere, and a layout is validated in one place (runtime/config validation, before the
// context exists).
//
// Ownership: the context owns the mesh and one communicator per axis group with more than one
// member; a group of one member has none (group() returns null, and every consumer treats a null
// group as "one rank, nothing to exchange"). Consumers borrow the groups for the context's
// lifetime; the model's expert-parallel engine shares them (shared_group()).
#include <mpi.h>

#include <array>
#include <memory>
#include <string>

#include "parallel/comm/communicator.h"
#include "parallel/comm/delayed_link.h"
#include "parallel/mesh.h"
#include "parallel/mesh_layout.h"
#include "runtime/config/trident.pb.h"

namespace trident::parallel {

struct ContextOptions {
  // parallel.ranks_per_node (0: ranks on one host form a node).
  int ranks_per_node = 0;
  // parallel.comm_timeout_s and the late-rank probe.
  comm::CommOptions comm;
  // logging.trace_dir set: every group's operations go on the trace's communication track.
  bool trace = false;
  // A modelled network (benchmarks): every group's operations take this latency and bandwidth
  // (comm::DelayedLink) on top of the real transfer. Free by default.
  comm::LinkModel link;
};

class ParallelContext {
 public:
  // One rank: every group has one member and no communicator. Needs no MPI (single-process
  // tools and the one-rank reference of every layout test).
  ParallelContext();
  // A shared one-rank context (it holds no communicator, so sharing it is safe).
  static const ParallelContext& one_rank();
  // Collective over MPI_COMM_WORLD: the mesh of `sizes` (checked against the number of ranks
  // started, the same UserError on every rank) and a communicator per group of ≥ 2 ranks.
  ParallelContext(const MeshSizes& sizes, const ContextOptions& options);
  ~ParallelContext();
  ParallelContext(const ParallelContext&) = delete;
  ParallelContext& operator=(const ParallelContext&) = delete;

  const MeshSizes& sizes() const { return layout_.sizes(); }
  const MeshLayout& layout() const { return layout_; }
  const MeshCoords& coords() const { return coords_; }
  // The MPI mesh (null for the one-rank context).
  const Mesh* mesh() const { return mesh_.get(); }

  // The group along `axis` (null when it has one member).
  comm::Communicator* group(MeshAxis axis) const { return groups_[index(axis)].get(); }
  const std::shared_ptr<comm::Communicator>& shared_group(MeshAxis axis) const {
    return groups_[index(axis)];
  }
  int size(MeshAxis axis) const { return layout_.axis_size(axis); }
  int rank(MeshAxis axis) const;

  comm::Communicator* world() const { return group(MeshAxis::World); }
  comm::Communicator* pp() const { return group(MeshAxis::Pp); }
  comm::Communicator* dp() const { return group(MeshAxis::Dp); }
  comm::Communicator* tp() const { return group(MeshAxis::Tp); }
  comm::Communicator* ep() const { return group(MeshAxis::Ep); }
  comm::Communicator* edp() const { return group(MeshAxis::Edp); }

  // Every rank of the job, for collective file I/O and stop agreement.
  MPI_Comm job() const { return job_; }
  // The rank that writes metrics and files meant once per job.
  bool primary() const { return coords_.rank == 0; }
  bool traced() const { return traced_; }
  // Waits until every traced operation has been recorded (before writing the trace).
  void drain_traces() const;

 private:
  static size_t index(MeshAxis axis) { return static_cast<size_t>(axis); }

  MeshLayout layout_;
  MeshCoords coords_;
  std::unique_ptr<Mesh> mesh_;  // before the groups: their probes read its communicators
  std::array<std::shared_ptr<comm::Communicator>, std::size(kAllMeshAxes)> groups_;
  MPI_Comm job_ = MPI_COMM_SELF;
  bool traced_ = false;
};

// The context of a run of `config` over every rank MPI started: first the layouts this build
// does not run are refused (config::check_runnable_layout, the same UserError on every rank,
// before any communicator exists), then the mesh and its groups are built with the config's
// node size, communication timeout and tracing (logging.trace_dir).
std::unique_ptr<ParallelContext> make_parallel_context(const config::TridentConfig& config,
                                                       const comm::LinkModel& link = {});

}  // namespace trident::parallel
