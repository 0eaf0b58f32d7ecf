#include "runtime/train/stop_signal.h"

#include <csignal>

#include "runtime/core/error.h"

namespace trident::train {

namespace {

volatile std::sig_atomic_t g_signal = 0;

extern "C" void record_stop_signal(int signal_number) {
  // A second Ctrl-C means "now": the default action ends the process without the save.
  if (signal_number == SIGINT && g_signal == SIGINT) {
    std::signal(SIGINT, SIG_DFL);
    std::raise(SIGINT);
    return;
  }
  g_signal = signal_number;
}

struct sigaction g_previous_term;
struct sigaction g_previous_usr1;
struct sigaction g_previous_int;

}  // namespace

StopSignalScope::StopSignalScope() {
  g_signal = 0;
  struct sigaction action = {};
  action.sa_handler = record_stop_signal;
  sigemptyset(&action.sa_mask);
  // SA_RESTART: a blocking read or MPI call interrupted by the signal goes on; the flag is
  // looked at between steps.
  action.sa_flags = SA_RESTART;
  TRIDENT_CHECK(sigaction(SIGTERM, &action, &g_previous_term) == 0, "sigaction(SIGTERM) failed");
  TRIDENT_CHECK(sigaction(SIGUSR1, &action, &g_previous_usr1) == 0, "sigaction(SIGUSR1) failed");
  TRIDENT_CHECK(sigaction(SIGINT, &action, &g_previous_int) == 0, "sigaction(SIGINT) failed");
}

StopSignalScope::~StopSignalScope() {
  sigaction(SIGTERM, &g_previous_term, nullptr);
  sigaction(SIGUSR1, &g_previous_usr1, nullptr);
  sigaction(SIGINT, &g_previous_int, nullptr);
}

std::string stop_signal_name(int signal_number) {
  switch (signal_number) {
    case SIGINT:
      return "SIGINT (Ctrl-C)";
    case SIGTERM:
      return "SIGTERM";
    case SIGUSR1:
      return "SIGUSR1";
    default:
      return "signal " + std::to_string(signal_number);
  }
}

int stop_signal_received() { return static_cast<int>(g_signal); }

int agree_on_stop(const parallel::ParallelContext& context) {
  // The maximum over dp, then tp, then pp is the maximum over the whole mesh.
  Tensor flag = Tensor::full({1}, 0.0f, DType::I32);
  flag.data<int32_t>()[0] = stop_signal_received();
  for (parallel::comm::Communicator* group : {context.dp(), context.tp(), context.pp()}) {
    if (group != nullptr) group->all_reduce(flag, parallel::comm::ReduceOp::Max)->wait();
  }
  return flag.data<int32_t>()[0];
}

int agree_on_stop(MPI_Comm comm) {
  int signal_number = stop_signal_received();
  TRIDENT_CHECK_MPI(MPI_Allreduce(MPI_IN_PLACE, &signal_number, 1, MPI_INT, MPI_MAX, comm));
  return signal_number;
}

}  // namespace trident::train
