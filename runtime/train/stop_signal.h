#pragma once
// Preemption: SIGTERM and SIGUSR1 (what Slurm sends before it stops a job), and SIGINT
// (Ctrl-C), ask a run to save a checkpoint at the next step boundary and exit cleanly with
// kExitStoppedBySignal. A second SIGINT ends the process at once, without the save.
//
// The handler only records the signal (async-signal-safe). At each step boundary the ranks agree
// with one all-reduce of the flag over the job, so a signal that reached only some ranks stops
// every rank after the same step and the checkpoint is consistent.
#include <mpi.h>

#include <string>
#include <vector>

#include "parallel/context.h"

namespace trident::train {

// Exit status of `trident pretrain` / `trident grpo` after a signal-triggered save
// (EX_TEMPFAIL of sysexits.h: a temporary failure, resume to continue).
inline constexpr int kExitStoppedBySignal = 75;

// Installs the SIGTERM, SIGUSR1 and SIGINT handlers for its lifetime (the previous ones are
// restored by the destructor). One at a time per process.
class StopSignalScope {
 public:
  StopSignalScope();
  ~StopSignalScope();
  StopSignalScope(const StopSignalScope&) = delete;
  StopSignalScope& operator=(const StopSignalScope&) = delete;
};

// The signal this process received since the scope was installed (0: none).
int stop_signal_received();

// "SIGINT (Ctrl-C)", "SIGTERM", "SIGUSR1": for the message a stopping run logs.
std::string stop_signal_name(int signal_number);

// Collective over `comm`: the highest signal number any rank received (0: none). Every rank
// gets the same answer, so all stop at the same step.
int agree_on_stop(MPI_Comm comm);
// The same over the run's mesh, through the dp, tp and pp groups' communicators (together they
// reach every rank), so a rank that died since the last collective is named by the timeout
// instead of leaving the others in a blocking MPI call.
int agree_on_stop(const parallel::ParallelContext& context);

}  // namespace trident::train
