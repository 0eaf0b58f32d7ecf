#pragma once
// A fresh directory whose path every rank of the job agrees on (rank 0 creates it and tells the
// others); removed with the object, after every rank is done with it.
#include <mpi.h>
#include <stdlib.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>

namespace trident::testing {

class SharedTempDir {
 public:
  SharedTempDir() {
    char name[256] = {};
    int rank = 0;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    if (rank == 0) {
      std::snprintf(name, sizeof(name), "%s/trident_test_XXXXXX",
                    std::filesystem::temp_directory_path().c_str());
      if (mkdtemp(name) == nullptr) std::abort();
    }
    MPI_Bcast(name, sizeof(name), MPI_CHAR, 0, MPI_COMM_WORLD);
    path_ = name;
  }
  ~SharedTempDir() {
    MPI_Barrier(MPI_COMM_WORLD);
    int rank = 0;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    if (rank == 0) std::filesystem::remove_all(path_);
  }
  SharedTempDir(const SharedTempDir&) = delete;
  SharedTempDir& operator=(const SharedTempDir&) = delete;

  const std::string& path() const { return path_; }
  std::string operator/(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

}  // namespace trident::testing
