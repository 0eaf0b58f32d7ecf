#pragma once
// A time limit on the blocking collectives that are not the communicators' (which have their
// own): a checkpoint save's agreements and HDF5's collective writes (MPI-IO). If a rank dies
// and the launcher keeps the job alive (mpirun with recovery enabled, a scheduler that does not
// end a step when one task dies), the others would wait in such a call forever. A rank enters
// each watched step in the same order as every other rank; a step not left after the limit
// makes the rank ask the others how far they got (parallel/comm/arrival_probe.h: a member that
// does not answer is dead or wedged), print what it learnt, and abort the job.
//
// Built once per run, while every rank is known to be alive (its construction is collective:
// a rank that died before a save could not take part in building one for it).
#include <mpi.h>

#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

namespace trident::parallel::comm {
class ArrivalProbe;
class MpiComm;
}  // namespace trident::parallel::comm

namespace trident::io {

class CollectiveWatchdog {
 public:
  // Collective over `comm`. timeout_seconds <= 0, or a single rank: watches nothing.
  CollectiveWatchdog(MPI_Comm comm, double timeout_seconds);
  ~CollectiveWatchdog();
  CollectiveWatchdog(const CollectiveWatchdog&) = delete;
  CollectiveWatchdog& operator=(const CollectiveWatchdog&) = delete;

  // This rank enters the next watched step, described by `what` ("checkpoint save of X:
  // tensor Y"); it leaves it by entering the next one or by leave().
  void enter(const std::string& what);
  // Nothing is watched until the next enter() (this rank waits on purpose, e.g. for rank 0's
  // serial checksum pass over a file of any size).
  void leave();

 private:
  void watch();

  double timeout_seconds_;
  std::unique_ptr<parallel::comm::MpiComm> comm_;
  std::unique_ptr<parallel::comm::ArrivalProbe> probe_;
  std::mutex mutex_;
  std::condition_variable changed_;
  uint64_t step_ = 0;  // the step entered last (1, 2, ...), the same number on every rank
  bool inside_ = false;
  std::string what_;
  bool done_ = false;
  std::thread thread_;
};

}  // namespace trident::io
