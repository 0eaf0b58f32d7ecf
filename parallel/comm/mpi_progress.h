#pragma once
// Drives MPI's outstanding non-blocking operations of one communicator to completion.
//
// Open MPI advances a non-blocking operation only inside MPI calls on some thread. Two kinds
// of thread make those calls here:
//   - a background thread, so that a collective or a rendezvous transfer moves while the
//     caller computes. It polls soon after activity (kBackgroundFastest) and backs off to a
//     slow pace (kBackgroundSlowest) when nothing happens: latency is the waiters' business;
//   - a thread waiting for an operation, which tests the outstanding requests itself instead
//     of sleeping until the background thread notices. Once the data is there, the waiter
//     sees it on its next test, without first needing another thread to be scheduled.
// Both make the same MPI_Test pass under one mutex, so a request is never tested by two
// threads at once (MPI forbids it) and each completion is reported exactly once.
//
// Why the waiter drives: on cores shared by more busy threads than there are cores (ranks
// oversubscribing a node, or a host thread per GPU beside data loaders), each hand-over
// between threads waits for the scheduler to give the next thread a core. Measured on a
// 2-core machine with 4 pipeline ranks: a blocked receive was seen a median of 3-8 ms after
// both sides had posted it, and the background thread polling every 32-200 us burnt 20-110
// core-ms per step.

#include <mpi.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "runtime/core/tensor.h"

namespace trident::parallel::comm {

// What an operation's Work handle and the progress engine share.
struct MpiWorkState {
  std::vector<Tensor> keep_alive;     // buffers MPI reads or writes until completion
  std::vector<int> counts;            // all_to_all_v: counts and displacements
  std::function<void()> on_complete;  // e.g. narrow an fp32 staging buffer back to bf16
  std::mutex mutex;
  std::condition_variable cv;
  bool done = false;
  std::string error;

  // Runs on_complete (its failure becomes the operation's), marks done and wakes waiters.
  void finish(std::string failure);
};

class MpiProgress {
 public:
  // `name` appears in the warning about operations left in flight at destruction.
  explicit MpiProgress(std::string name);
  ~MpiProgress();  // stop()
  MpiProgress(const MpiProgress&) = delete;
  MpiProgress& operator=(const MpiProgress&) = delete;

  // Hands a posted request over; `state` is finished when MPI reports it complete.
  void add(MPI_Request request, std::shared_ptr<MpiWorkState> state);

  // Stops the background thread and all testing (the communicator is going away); operations
  // still in flight are leaked, not freed under MPI's feet. Waiters then time out.
  void stop();

  // Blocks until `state` is done or `timeout` passes, testing the outstanding requests
  // itself meanwhile. Returns whether it is done.
  bool wait(MpiWorkState& state, std::chrono::duration<double> timeout);

 private:
  struct Outstanding {
    MPI_Request request = MPI_REQUEST_NULL;
    std::shared_ptr<MpiWorkState> state;
  };
  // Pauses between polls: the first after a completion, doubling while nothing completes up
  // to the slowest. The background thread only has to keep transfers and collectives moving
  // behind compute (each of its polls also takes a core from compute); a waiter's pause is
  // how late it can see data that has arrived.
  static constexpr std::chrono::microseconds kBackgroundFastest{200};
  static constexpr std::chrono::microseconds kBackgroundSlowest{5000};
  static constexpr std::chrono::microseconds kWaiterFastest{50};
  static constexpr std::chrono::microseconds kWaiterSlowest{1000};

  // One MPI_Test pass over everything outstanding; returns whether anything completed.
  // Tests nothing once stopped.
  bool test_outstanding();
  void background_loop();

  std::string name_;
  std::mutex test_mutex_;  // one MPI_Test pass at a time
  std::vector<Outstanding> outstanding_;
  std::mutex queue_mutex_;
  std::condition_variable queue_cv_;
  std::deque<Outstanding> incoming_;
  std::atomic<size_t> pending_{0};  // added and not yet complete
  bool stop_ = false;
  std::thread background_;
};

}  // namespace trident::parallel::comm
