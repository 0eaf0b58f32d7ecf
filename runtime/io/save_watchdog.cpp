#include "runtime/io/save_watchdog.h"

#include <chrono>
#include <cstdio>

#include "parallel/comm/arrival_probe.h"
#include "parallel/comm/mpi_comm.h"
#include "runtime/core/error.h"

namespace trident::io {

namespace {
// The part as the probe publishes it: a numbered collective of this save's own group.
parallel::OpInfo part_info(uint64_t part) {
  parallel::OpInfo info;
  info.op = parallel::CommOp::Barrier;
  info.seq = part;
  return info;
}
}  // namespace

SaveWatchdog::SaveWatchdog(MPI_Comm comm, std::string what, double timeout_seconds)
    : what_(std::move(what)), timeout_seconds_(timeout_seconds) {
  int size = 1;
  MPI_Comm_size(comm, &size);
  if (timeout_seconds_ <= 0 || size == 1) return;
  MPI_Comm own = MPI_COMM_NULL;
  TRIDENT_CHECK_MPI(MPI_Comm_dup(comm, &own));
  comm_ = std::make_unique<parallel::MpiComm>(own, "checkpoint save");
  probe_ = std::make_unique<parallel::ArrivalProbe>(*comm_, /*grace_seconds=*/2.0);
  thread_ = std::thread([this] { watch(); });
}

SaveWatchdog::~SaveWatchdog() {
  if (!thread_.joinable()) return;
  {
    const std::lock_guard<std::mutex> lock(mutex_);
    done_ = true;
  }
  changed_.notify_all();
  thread_.join();
}

void SaveWatchdog::enter(uint64_t part, const std::string& name) {
  if (!probe_) return;
  probe_->record(part_info(part));
  {
    const std::lock_guard<std::mutex> lock(mutex_);
    part_ = part;
    part_name_ = name;
  }
  changed_.notify_all();
}

void SaveWatchdog::watch() {
  std::unique_lock<std::mutex> lock(mutex_);
  while (!done_) {
    const uint64_t part = part_;
    const auto limit = std::chrono::duration<double>(timeout_seconds_);
    if (changed_.wait_for(lock, limit, [&] { return done_ || part_ != part; })) continue;
    // No progress for the whole limit: find out who is missing, say it, end the job.
    const std::string name = part_name_;
    lock.unlock();
    const std::string diagnosis = probe_->diagnose(part_info(part));
    std::fprintf(stderr,
                 "[rank %d] %s: part %llu (%s) did not complete within %.0f s "
                 "(parallel.comm_timeout_s); %s; ending the job\n",
                 current_rank(), what_.c_str(), static_cast<unsigned long long>(part),
                 name.c_str(), timeout_seconds_, diagnosis.c_str());
    std::fflush(stderr);
    MPI_Abort(MPI_COMM_WORLD, 1);
    return;
  }
}

}  // namespace trident::io
