#pragma once
// Serial work inside a collective operation: rank 0 does it (file-system checks, checksums,
// renames), and every rank learns the outcome, so that all of them throw the same error or
// all go on. A rank that threw alone would leave the others waiting in the next collective.
#include <mpi.h>

#include <exception>
#include <string>

#include "runtime/core/error.h"

namespace trident::io {

// Broadcasts rank 0's `text` to every rank of `comm`.
inline void broadcast_string(std::string& text, MPI_Comm comm) {
  int length = static_cast<int>(text.size());
  TRIDENT_CHECK_MPI(MPI_Bcast(&length, 1, MPI_INT, 0, comm));
  text.resize(static_cast<size_t>(length));
  if (length > 0) TRIDENT_CHECK_MPI(MPI_Bcast(text.data(), length, MPI_CHAR, 0, comm));
}

// Runs `work` on rank 0 and rethrows its failure on every rank (a UserError stays one).
template <typename Work>
void on_root(MPI_Comm comm, Work&& work) {
  int rank = 0;
  MPI_Comm_rank(comm, &rank);
  std::string error;
  int user = 0;
  if (rank == 0) {
    try {
      work();
    } catch (const UserError& e) {
      error = e.detail();
      user = 1;
    } catch (const std::exception& e) {
      error = e.what();
      if (error.empty()) error = "unknown error";
    }
  }
  TRIDENT_CHECK_MPI(MPI_Bcast(&user, 1, MPI_INT, 0, comm));
  broadcast_string(error, comm);
  if (error.empty()) return;
  if (user != 0) TRIDENT_USER_FAIL(error);
  TRIDENT_FAIL_KIND(ErrorKind::Io, "checkpoint: rank 0 failed: ", error);
}

}  // namespace trident::io
