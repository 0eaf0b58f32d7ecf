#pragma once
// An owning handle for one MPI communicator plus what a reader of an error message needs to
// know about it: a name ("tp[pp=0,dp=1]") and the world rank of each member, so a message can
// say "world rank 5" rather than an index that means nothing outside the group.

#include <mpi.h>

#include <string>
#include <vector>

namespace trident::parallel::comm {

class MpiComm {
 public:
  MpiComm() = default;  // empty: valid() is false
  // Takes ownership of `comm` (freed on destruction unless it is MPI_COMM_WORLD/SELF).
  // Installs MPI_ERRORS_RETURN and looks up the world ranks of its members.
  MpiComm(MPI_Comm comm, std::string name);
  ~MpiComm();
  MpiComm(MpiComm&& other) noexcept;
  MpiComm& operator=(MpiComm&& other) noexcept;
  MpiComm(const MpiComm&) = delete;
  MpiComm& operator=(const MpiComm&) = delete;

  // A handle on MPI_COMM_WORLD that does not own it.
  static MpiComm world();
  // MPI_Comm_split of `parent` (collective over parent).
  static MpiComm split(const MpiComm& parent, int color, int key, std::string name);
  // MPI_Comm_dup (collective): an independent matching space with the same members.
  MpiComm duplicate(const std::string& suffix) const;

  bool valid() const { return comm_ != MPI_COMM_NULL; }
  MPI_Comm get() const { return comm_; }
  int rank() const { return rank_; }
  int size() const { return size_; }
  const std::string& name() const { return name_; }
  // World rank of group member `group_rank`.
  int world_rank_of(int group_rank) const { return world_ranks_[group_rank]; }
  const std::vector<int>& world_ranks() const { return world_ranks_; }
  // "rank 2 (world rank 6)" or "rank 2" when the group is the world.
  std::string describe_member(int group_rank) const;

 private:
  void release();
  MPI_Comm comm_ = MPI_COMM_NULL;
  bool owned_ = false;
  int rank_ = 0;
  int size_ = 0;
  std::string name_;
  std::vector<int> world_ranks_;
};

}  // namespace trident::parallel::comm
