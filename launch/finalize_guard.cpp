// MPI_Finalize with a time limit, for the trident binary (through MPI's profiling interface:
// this definition takes the place of the library's, which stays reachable as PMPI_Finalize).
//
// Finalize is collective in practice: it waits for every rank. When a rank stops on an error
// that the others did not share (a file it alone could not read, a peer that died), the others
// may be blocked in a collective until their communication timeout, or forever if a peer is
// gone, and this rank would wait in finalize with them, its message not yet printed. So
// finalize runs under a watchdog: if it has not returned after kFinalizeGraceSeconds, the rank
// prints its last error and ends itself, and the launcher (mpirun, srun) takes the job down.
// A healthy job finalizes in well under a second and never sees it.
#include <mpi.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <exception>
#include <thread>

#include "runtime/core/error.h"
#include "runtime/io/checkpoint_hdf5.h"

namespace {
constexpr int kFinalizeGraceSeconds = 30;
}  // namespace

extern "C" int MPI_Finalize() {
  int size = 1;
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  const bool failing = std::uncaught_exceptions() > 0;
  if (trident::io::h5::file_close_failed()) {
    // HDF5's shutdown inside finalize would crash on the half-closed file: say why and end.
    std::fprintf(stderr,
                 "[rank %d] %s\n[rank %d] an HDF5 file could not be closed; ending "
                 "without MPI_Finalize\n",
                 trident::current_rank(), trident::last_error_message().c_str(),
                 trident::current_rank());
    std::fflush(stderr);
    std::fflush(stdout);
    _exit(failing ? 2 : 1);
  }
  if (size > 1) {
    std::thread([failing] {
      std::this_thread::sleep_for(std::chrono::seconds(kFinalizeGraceSeconds));
      const std::string last = trident::last_error_message();
      std::fprintf(stderr,
                   "[rank %d] MPI_Finalize has waited %d s for the other ranks (one is gone or "
                   "still running)%s%s; ending this rank\n",
                   trident::current_rank(), kFinalizeGraceSeconds,
                   failing && !last.empty() ? " after this error: " : "",
                   failing ? last.c_str() : "");
      std::fflush(stderr);
      _exit(1);
    }).detach();
  }
  return PMPI_Finalize();
}
