#include "parallel/mpi_session.h"

#include <mpi.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <string>

#include "runtime/core/error.h"
#include "runtime/core/logging.h"

namespace trident::parallel {

namespace {
// Open MPI 4's own MPI-IO component, ompio, is not safe while a second thread drives MPI's
// progress engine: its collective writer (fcoll/vulcan) registers a progress callback over its
// pending file requests, and that callback crashes when another thread runs it while the writing
// thread works through them (reproduced with plain MPI and HDF5 calls). Trident always has such threads during a checkpoint save (the collective watchdog's
// and the communicators' arrival probes poll with MPI_Test, by design while the main thread is
// inside HDF5's collective write), and a rank died of it once in a test run (SIGSEGV in
// mca_common_ompio_progress under ArrivalProbe::serve). ROMIO, the other component, adds no
// progress callback. So ompio is left out unless the user chose the component (OMPI_MCA_io, which
// `mpirun --mca io ...` also sets); MCA variables are read by MPI_Init, hence before it.
// Evidence and the reproduction: docs/checkpoint-format.md "MPI-IO and progress threads".
// Returns the user's choice when it keeps ompio, so that it can be warned about once MPI is up.
std::string leave_out_thread_unsafe_mpi_io() {
#if defined(OPEN_MPI) && OPEN_MPI && defined(OMPI_MAJOR_VERSION) && OMPI_MAJOR_VERSION < 5
  const char* chosen = std::getenv("OMPI_MCA_io");
  if (chosen == nullptr) {
    setenv("OMPI_MCA_io", "^ompio", /*overwrite=*/0);
    return {};
  }
  const std::string value = chosen;
  if (!value.empty() && value[0] != '^' && value.find("ompio") != std::string::npos) return value;
#endif
  return {};
}
}  // namespace

MpiSession::MpiSession(int* argc, char*** argv) {
  int initialized = 0;
  TRIDENT_CHECK_MPI(MPI_Initialized(&initialized));
  int provided = MPI_THREAD_SINGLE;
  std::string unsafe_mpi_io;
  if (initialized) {
    TRIDENT_CHECK_MPI(MPI_Query_thread(&provided));
  } else {
    unsafe_mpi_io = leave_out_thread_unsafe_mpi_io();
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
  if (!unsafe_mpi_io.empty() && world_rank_ == 0) {
    TLOG_WARN("OMPI_MCA_io=", unsafe_mpi_io,
              " selects Open MPI 4's ompio for checkpoints, which can crash while Trident's "
              "watchdog threads poll MPI during a collective write; unset OMPI_MCA_io (Trident "
              "then uses ROMIO) or set it to romio321");
  }
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
