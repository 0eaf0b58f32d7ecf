#pragma once
// Set-up steps that can fail on some ranks and not others (binding a GPU, creating an NCCL
// communicator): each rank reports whether its part worked, and every rank stops if any failed.
// Without it a rank that failed would leave the others waiting in the next collective until a
// timeout, or for ever, and their messages would not say why.
#include <string>

#include "parallel/comm/mpi_comm.h"

namespace trident::parallel::comm {

// Collective over `group`. `problem` is empty where this rank's part of `step` worked, else
// what went wrong. If every rank's is empty it returns; otherwise every rank throws a user
// error: a failing rank with its own problem, the others naming the ranks that failed, so each
// rank's log says why the job stops.
void require_on_every_rank(const MpiComm& group, const std::string& problem,
                           const std::string& step);

}  // namespace trident::parallel::comm
