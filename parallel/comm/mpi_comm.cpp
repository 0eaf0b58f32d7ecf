#include "parallel/comm/mpi_comm.h"

#include <numeric>
#include <utility>

#include "runtime/core/error.h"

namespace trident::parallel::comm {

MpiComm::MpiComm(MPI_Comm comm, std::string name) : comm_(comm), name_(std::move(name)) {
  TRIDENT_CHECK(comm != MPI_COMM_NULL, "communicator '", name_, "' is MPI_COMM_NULL");
  owned_ = comm != MPI_COMM_WORLD && comm != MPI_COMM_SELF;
  TRIDENT_CHECK_MPI(MPI_Comm_set_errhandler(comm_, MPI_ERRORS_RETURN));
  TRIDENT_CHECK_MPI(MPI_Comm_rank(comm_, &rank_));
  TRIDENT_CHECK_MPI(MPI_Comm_size(comm_, &size_));
  MPI_Group group = MPI_GROUP_NULL;
  MPI_Group world_group = MPI_GROUP_NULL;
  TRIDENT_CHECK_MPI(MPI_Comm_group(comm_, &group));
  TRIDENT_CHECK_MPI(MPI_Comm_group(MPI_COMM_WORLD, &world_group));
  std::vector<int> members(static_cast<size_t>(size_));
  std::iota(members.begin(), members.end(), 0);
  world_ranks_.resize(members.size());
  TRIDENT_CHECK_MPI(
      MPI_Group_translate_ranks(group, size_, members.data(), world_group, world_ranks_.data()));
  MPI_Group_free(&group);
  MPI_Group_free(&world_group);
}

MpiComm::~MpiComm() { release(); }

MpiComm::MpiComm(MpiComm&& other) noexcept { *this = std::move(other); }

MpiComm& MpiComm::operator=(MpiComm&& other) noexcept {
  if (this != &other) {
    release();
    comm_ = std::exchange(other.comm_, MPI_COMM_NULL);
    owned_ = std::exchange(other.owned_, false);
    rank_ = other.rank_;
    size_ = other.size_;
    name_ = std::move(other.name_);
    world_ranks_ = std::move(other.world_ranks_);
  }
  return *this;
}

void MpiComm::release() {
  if (owned_ && comm_ != MPI_COMM_NULL) {
    int finalized = 0;
    MPI_Finalized(&finalized);
    if (!finalized) MPI_Comm_free(&comm_);
  }
  comm_ = MPI_COMM_NULL;
  owned_ = false;
}

MpiComm MpiComm::world() { return MpiComm(MPI_COMM_WORLD, "world"); }

MpiComm MpiComm::split(const MpiComm& parent, int color, int key, std::string name) {
  MPI_Comm out = MPI_COMM_NULL;
  TRIDENT_CHECK_MPI(MPI_Comm_split(parent.get(), color, key, &out));
  return MpiComm(out, std::move(name));
}

MpiComm MpiComm::duplicate(const std::string& suffix) const {
  MPI_Comm out = MPI_COMM_NULL;
  TRIDENT_CHECK_MPI(MPI_Comm_dup(comm_, &out));
  return MpiComm(out, name_ + suffix);
}

std::string MpiComm::describe_member(int group_rank) const {
  const int world = world_ranks_[static_cast<size_t>(group_rank)];
  int world_size = 0;
  MPI_Comm_size(MPI_COMM_WORLD, &world_size);
  // In a group that is the world in world order the two numbers agree: say it once.
  if (size_ == world_size && world == group_rank) return "rank " + std::to_string(group_rank);
  return "rank " + std::to_string(group_rank) + " (world rank " + std::to_string(world) + ")";
}

}  // namespace trident::parallel::comm
