#include "runtime/io/collective_watchdog.h"

#include <chrono>
#include <cstdio>

#include "parallel/comm/arrival_probe.h"
#include "parallel/comm/mpi_comm.h"
#include "runtime/core/error.h"

namespace trident::io {

namespace {
// A watched step as the probe publishes it: a numbered collective of the watchdog's group.
parallel::comm::OpInfo step_info(uint64_t step) {
  parallel::comm::OpInfo info;
  info.op = parallel::comm::CommOp::Barrier;
  info.seq = step;
  return info;
}
}  // namespace

CollectiveWatchdog::CollectiveWatchdog(MPI_Comm comm, double timeout_seconds)
    : timeout_seconds_(timeout_seconds) {
  int size = 1;
  MPI_Comm_size(comm, &size);
  if (timeout_seconds_ <= 0 || size == 1) return;
  MPI_Comm own = MPI_COMM_NULL;
  TRIDENT_CHECK_MPI(MPI_Comm_dup(comm, &own));
  comm_ = std::make_unique<parallel::comm::MpiComm>(own, "job");
  probe_ = std::make_unique<parallel::comm::ArrivalProbe>(*comm_, /*grace_seconds=*/2.0);
  thread_ = std::thread([this] { watch(); });
}

CollectiveWatchdog::~CollectiveWatchdog() {
  if (!thread_.joinable()) return;
  {
    const std::lock_guard<std::mutex> lock(mutex_);
    done_ = true;
  }
  changed_.notify_all();
  thread_.join();
}

void CollectiveWatchdog::enter(const std::string& what) {
  if (!probe_) return;
  {
    const std::lock_guard<std::mutex> lock(mutex_);
    ++step_;
    inside_ = true;
    what_ = what;
    probe_->record(step_info(step_));
  }
  changed_.notify_all();
}

void CollectiveWatchdog::leave() {
  if (!probe_) return;
  {
    const std::lock_guard<std::mutex> lock(mutex_);
    inside_ = false;
  }
  changed_.notify_all();
}

void CollectiveWatchdog::watch() {
  std::unique_lock<std::mutex> lock(mutex_);
  while (!done_) {
    if (!inside_) {
      changed_.wait(lock, [&] { return done_ || inside_; });
      continue;
    }
    const uint64_t step = step_;
    const auto limit = std::chrono::duration<double>(timeout_seconds_);
    if (changed_.wait_for(lock, limit, [&] { return done_ || !inside_ || step_ != step; })) {
      continue;
    }
    // No progress for the whole limit: find out who is missing, say it, end the job.
    const std::string what = what_;
    lock.unlock();
    const std::string diagnosis = probe_->diagnose(step_info(step));
    std::fprintf(stderr,
                 "[rank %d] %s did not complete within %.0f s (parallel.comm_timeout_s); %s; "
                 "ending the job\n",
                 current_rank(), what.c_str(), timeout_seconds_, diagnosis.c_str());
    std::fflush(stderr);
    MPI_Abort(MPI_COMM_WORLD, 1);
    return;
  }
}

}  // namespace trident::io
