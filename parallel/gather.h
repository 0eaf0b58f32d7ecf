#pragma once
// Variable-length text from every rank to one: the layout table, the records a data-parallel
// job's ranks produced for rank 0 to write.
#include <mpi.h>

#include <string>
#include <vector>

namespace trident::parallel {

// Every rank's `mine`, in rank order, on `root`; an empty vector on the other ranks.
// Collective over `comm`.
std::vector<std::string> gather_strings(const std::string& mine, MPI_Comm comm, int root = 0);

}  // namespace trident::parallel
