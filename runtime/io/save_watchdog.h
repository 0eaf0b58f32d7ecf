#pragma once
// A time limit on each collective part of a checkpoint save. HDF5's collective writes (MPI-IO)
// and the save's own agreements are plain blocking MPI calls without the communicators'
// timeouts: if a rank dies mid-save and the launcher keeps the job alive (mpirun with
// recovery enabled, a scheduler that does not kill a step when one task dies), the others would
// wait forever. Each rank announces the part it enters; a part that has not finished after the
// limit makes the rank ask the others how far they got (parallel/comm/arrival_probe.h: a
// member that does not answer is dead or wedged), print what it learnt, and abort the job.
#include <mpi.h>

#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

namespace trident::parallel {
class ArrivalProbe;
class MpiComm;
}  // namespace trident::parallel

namespace trident::io {

class SaveWatchdog {
 public:
  // Collective over `comm`. timeout_seconds <= 0, or a single rank: watches nothing.
  SaveWatchdog(MPI_Comm comm, std::string what, double timeout_seconds);
  ~SaveWatchdog();
  SaveWatchdog(const SaveWatchdog&) = delete;
  SaveWatchdog& operator=(const SaveWatchdog&) = delete;

  // This rank enters part `part` (1, 2, ...) of the save, described by `name`.
  void enter(uint64_t part, const std::string& name);

 private:
  void watch();

  std::string what_;
  double timeout_seconds_;
  std::unique_ptr<parallel::MpiComm> comm_;
  std::unique_ptr<parallel::ArrivalProbe> probe_;
  std::mutex mutex_;
  std::condition_variable changed_;
  uint64_t part_ = 0;
  std::string part_name_;
  bool done_ = false;
  std::thread thread_;
};

}  // namespace trident::io
