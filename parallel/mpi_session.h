#pragma once
// The process's MPI lifetime. One MpiSession lives at the top of main(): it initialises MPI
// with MPI_THREAD_MULTIPLE (the communicators' progress threads call MPI concurrently with the
// compute thread), makes every error return a code instead of killing the job silently, and
// tells the error/logging layer which rank this is. Destruction finalises MPI. On Open MPI 4 it
// leaves the ompio MPI-IO component out unless the user chose one (ompio crashes while another
// thread drives MPI progress; see mpi_session.cpp).
//
// A rank that hits an error it cannot recover from calls abort_job(): it prints its own
// message first and then MPI_Abort()s, so the launcher tears every other rank down instead
// of leaving them blocked in a collective that will never complete.

#include <string>

namespace trident::parallel {

class MpiSession {
 public:
  // argc/argv may be null. If MPI is already initialised (a test harness did it), the
  // session adopts it and leaves finalisation to whoever initialised it.
  MpiSession(int* argc, char*** argv);
  ~MpiSession();
  MpiSession(const MpiSession&) = delete;
  MpiSession& operator=(const MpiSession&) = delete;

  int world_rank() const { return world_rank_; }
  int world_size() const { return world_size_; }
  const std::string& host_name() const { return host_name_; }

 private:
  bool owns_mpi_ = false;
  int world_rank_ = 0;
  int world_size_ = 1;
  std::string host_name_;
};

// Prints "[rank N] <message>" to stderr (flushed), then MPI_Abort(MPI_COMM_WORLD, exit_code).
// Falls back to _exit when MPI is not initialised. Never returns.
[[noreturn]] void abort_job(const std::string& message, int exit_code = 1);

}  // namespace trident::parallel
