#include "parallel/mpi_session.h"

#include <mpi.h>
#include <unistd.h>

#include <cstdio>

#include "runtime/core/error.h"

namespace trident::parallel {

MpiSession::MpiSession(int* argc, char*** argv) {
  int initialized = 0;
  TRIDENT_CHECK_MPI(MPI_Initialized(&initialized));
  int provided = MPI_THREAD_SINGLE;
  if (initialized) {
    TRIDENT_CHECK_MPI(MPI_Query_thread(&provided));
  } else {
    TRIDENT_CHECK_MPI(MPI_Init_thread(argc, argv, MPI_THREAD_MULTIPLE, &provided));
    owns_mpi_ = true;
  }
  TRIDENT_CHECK_MPI(MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN));
  TRIDENT_CHECK_MPI(MPI_Comm_rank(MPI_COMM_WORLD, &world_rank_));
  TRIDENT_CHECK_MPI(MPI_Comm_size(MPI_COMM_WORLD, &world_size_));
  set_current_rank(world_rank_);
  char name[MPI_MAX_PROCESSOR_NAME];
  int length = 0;
  TRIDENT_CHECK_MPI(MPI_Get_processor_name(name, &length));
  host_name_.assign(name, static_cast<size_t>(length));
  if (provided < MPI_THREAD_MULTIPLE) {
    // Every rank sees the same library, so every rank throws: nobody is left waiting.
    TRIDENT_FAIL_KIND(ErrorKind::Mpi,
                      "the MPI library provides thread level ", provided,
                      " but Trident needs MPI_THREAD_MULTIPLE (", MPI_THREAD_MULTIPLE,
                      ") for its communication progress threads; use an MPI built with thread "
                      "support (Open MPI: --enable-mpi-thread-multiple, the default since 3.0)");
  }
}

MpiSession::~MpiSession() {
  if (!owns_mpi_) return;
  int finalized = 0;
  MPI_Finalized(&finalized);
  if (!finalized) MPI_Finalize();
}

void abort_job(const std::string& message, int exit_code) {
  // Messages from trident::Error already start with "[rank N]"; do not say it twice.
  if (message.rfind("[rank ", 0) == 0) {
    std::fprintf(stderr, "%s\n", message.c_str());
  } else {
    std::fprintf(stderr, "[rank %d] fatal: %s\n", current_rank(), message.c_str());
  }
  std::fflush(stderr);
  std::fflush(stdout);
  int initialized = 0;
  int finalized = 0;
  MPI_Initialized(&initialized);
  MPI_Finalized(&finalized);
  if (initialized && !finalized) MPI_Abort(MPI_COMM_WORLD, exit_code);
  _exit(exit_code);
}

}  // namespace trident::parallel
