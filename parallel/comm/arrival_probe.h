#pragma once
// Finds out, after a timeout, which members of a group have not reached an operation.
//
// Each rank publishes how far it got: the number of the last collective it posted (with the
// kind, dtype and count of recent ones) and how many sends/receives it posted to each peer.
// Nothing is exchanged while things go well. When a wait() times out, the waiting rank sends
// a small query to the members over a private duplicate of the group's communicator; a
// service thread on each member answers from its published counters, whatever its compute
// thread is doing. A member that does not answer within the grace period is dead or wedged.
// Everything is non-blocking point-to-point (MPI_Isend/MPI_Irecv/MPI_Test), so asking about
// a dead rank cannot itself hang, and it works on Open MPI 4.1 without one-sided windows.

#include <array>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "parallel/comm/communicator.h"
#include "parallel/comm/mpi_comm.h"

namespace trident::parallel::comm {

class ArrivalProbe {
 public:
  // Collective over `group` (duplicates it). Starts the service thread.
  ArrivalProbe(const MpiComm& group, double grace_seconds);
  ~ArrivalProbe();
  ArrivalProbe(const ArrivalProbe&) = delete;
  ArrivalProbe& operator=(const ArrivalProbe&) = delete;

  // Called by a backend as it posts an operation: gives `info` its number (the n-th
  // collective of the group, or the n-th send to / receive from its peer) and publishes it.
  // The probe's published counters are the numbering, so a backend keeps none of its own.
  void number(OpInfo& info);
  // Publishes an operation numbered by the caller (the collective watchdog's steps).
  void record(const OpInfo& info);

  // Asks the relevant members about `late` and returns a sentence for the error message:
  // who has not arrived, who is not answering, who posted something else under that number.
  std::string diagnose(const OpInfo& late) const;

 private:
  struct Published {
    uint64_t last_seq = 0;
    OpInfo last;
    std::array<OpInfo, 256> recent{};  // by seq % 256
    std::vector<uint64_t> sends_to;    // per peer
    std::vector<uint64_t> recvs_from;  // per peer
  };
  static constexpr int kQueryTag = 32767;  // replies use tags below it

  void record_locked(const OpInfo& info);
  void serve();
  std::vector<int64_t> answer(int asker, uint64_t asked_seq) const;

  MpiComm control_;
  double grace_seconds_;
  mutable std::mutex mutex_;
  Published published_;
  mutable std::atomic<int> next_reply_tag_{0};
  // How often the service thread looks for queries: well inside the grace period.
  static constexpr std::chrono::milliseconds kServicePeriod{20};
  std::mutex stop_mutex_;
  std::condition_variable stop_cv_;
  bool stop_ = false;
  std::thread service_;
};

}  // namespace trident::parallel::comm
