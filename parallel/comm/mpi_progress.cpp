#include "parallel/comm/mpi_progress.h"

#include <pthread.h>

#include <algorithm>

#include "runtime/core/error.h"
#include "runtime/core/logging.h"

namespace trident::parallel::comm {

void MpiWorkState::finish(std::string failure) {
  if (failure.empty() && on_complete) {
    try {
      on_complete();
    } catch (const std::exception& e) {
      failure = e.what();
    }
  }
  std::lock_guard<std::mutex> lock(mutex);
  done = true;
  error = std::move(failure);
  cv.notify_all();
}

MpiProgress::MpiProgress(std::string name)
    : name_(std::move(name)), background_([this] { background_loop(); }) {}

MpiProgress::~MpiProgress() { stop(); }

void MpiProgress::stop() {
  {
    std::lock_guard<std::mutex> lock(queue_mutex_);
    if (stop_) return;
    stop_ = true;
  }
  queue_cv_.notify_all();
  background_.join();
  std::lock_guard<std::mutex> lock(test_mutex_);
  for (Outstanding& o : incoming_) outstanding_.push_back(std::move(o));
  if (!outstanding_.empty()) {
    // Operations a peer never joined (the job is failing). Their buffers must outlive MPI's
    // reference to them, so they are deliberately leaked rather than freed under MPI's feet.
    TLOG_WARN("communicator '", name_, "' destroyed with ", outstanding_.size(),
              " operation(s) still in flight; leaving them to MPI");
    new std::vector<Outstanding>(std::move(outstanding_));
  }
}

void MpiProgress::add(MPI_Request request, std::shared_ptr<MpiWorkState> state) {
  {
    std::lock_guard<std::mutex> lock(queue_mutex_);
    incoming_.push_back(Outstanding{request, std::move(state)});
    pending_.fetch_add(1);
  }
  queue_cv_.notify_one();
}

bool MpiProgress::test_outstanding() {
  std::lock_guard<std::mutex> test_lock(test_mutex_);
  {
    std::lock_guard<std::mutex> lock(queue_mutex_);
    if (stop_) return false;
    while (!incoming_.empty()) {
      outstanding_.push_back(std::move(incoming_.front()));
      incoming_.pop_front();
    }
  }
  bool completed = false;
  for (size_t i = 0; i < outstanding_.size();) {
    int complete = 0;
    const int rc = MPI_Test(&outstanding_[i].request, &complete, MPI_STATUS_IGNORE);
    if (rc != MPI_SUCCESS || complete) {
      outstanding_[i].state->finish(rc == MPI_SUCCESS ? std::string()
                                                      : detail::mpi_error_string(rc));
      outstanding_[i] = std::move(outstanding_.back());
      outstanding_.pop_back();
      pending_.fetch_sub(1);
      completed = true;
    } else {
      ++i;
    }
  }
  return completed;
}

bool MpiProgress::wait(MpiWorkState& state, std::chrono::duration<double> timeout) {
  const auto deadline = std::chrono::steady_clock::now() +
                        std::chrono::duration_cast<std::chrono::steady_clock::duration>(timeout);
  std::chrono::microseconds pace = kWaiterFastest;
  while (true) {
    if (test_outstanding()) pace = kWaiterFastest;
    std::unique_lock<std::mutex> lock(state.mutex);
    if (state.done) return true;
    const auto now = std::chrono::steady_clock::now();
    if (now >= deadline) return false;
    // Woken early when the background thread completes it.
    state.cv.wait_until(lock, std::min(deadline, now + pace), [&] { return state.done; });
    if (state.done) return true;
    pace = std::min(pace * 2, kWaiterSlowest);
  }
}

void MpiProgress::background_loop() {
  pthread_setname_np(pthread_self(), "mpi-progress");  // tells it apart in profiles
  std::chrono::microseconds pace = kBackgroundFastest;
  while (true) {
    {
      // Nothing to drive: sleep until an operation is added.
      std::unique_lock<std::mutex> lock(queue_mutex_);
      queue_cv_.wait(lock, [this] { return stop_ || pending_.load() > 0; });
      if (stop_) return;
    }
    pace = test_outstanding() ? kBackgroundFastest : std::min(pace * 2, kBackgroundSlowest);
    std::unique_lock<std::mutex> lock(queue_mutex_);
    queue_cv_.wait_for(lock, pace, [this] { return stop_ || !incoming_.empty(); });
  }
}

}  // namespace trident::parallel::comm
