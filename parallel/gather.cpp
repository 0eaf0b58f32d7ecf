#include "parallel/gather.h"

#include <cstdint>

#include "runtime/core/error.h"

namespace trident::parallel {

std::vector<std::string> gather_strings(const std::string& mine, MPI_Comm comm, int root) {
  int rank = 0, size = 1;
  TRIDENT_CHECK_MPI(MPI_Comm_rank(comm, &rank));
  TRIDENT_CHECK_MPI(MPI_Comm_size(comm, &size));
  TRIDENT_CHECK(mine.size() <= static_cast<size_t>(INT32_MAX), "gather_strings: ", mine.size(),
                " bytes on one rank is more than one MPI message holds");
  const int length = static_cast<int>(mine.size());
  std::vector<int> lengths(static_cast<size_t>(size));
  TRIDENT_CHECK_MPI(MPI_Gather(&length, 1, MPI_INT, lengths.data(), 1, MPI_INT, root, comm));
  std::vector<int> offsets(static_cast<size_t>(size), 0);
  int64_t total = 0;
  for (int r = 0; r < size; ++r) {
    offsets[static_cast<size_t>(r)] = static_cast<int>(total);
    total += lengths[static_cast<size_t>(r)];
  }
  TRIDENT_CHECK(total <= INT32_MAX, "gather_strings: ", total,
                " bytes in all is more than one MPI message holds");
  std::string all(static_cast<size_t>(rank == root ? total : 0), '\0');
  TRIDENT_CHECK_MPI(MPI_Gatherv(mine.data(), length, MPI_CHAR, all.data(), lengths.data(),
                                offsets.data(), MPI_CHAR, root, comm));
  std::vector<std::string> out;
  if (rank != root) return out;
  for (int r = 0; r < size; ++r) {
    out.push_back(all.substr(static_cast<size_t>(offsets[static_cast<size_t>(r)]),
                             static_cast<size_t>(lengths[static_cast<size_t>(r)])));
  }
  return out;
}

}  // namespace trident::parallel
