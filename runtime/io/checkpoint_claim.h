#pragma once
// Which run a checkpoint directory belongs to. Every checkpoint stores the id of the run that
// wrote it (a run resumed from a checkpoint keeps that checkpoint's id), so that
//  - a new run refuses, before it trains, a directory that holds another run's checkpoints:
//    it would overwrite them, and a later `--resume auto` would pick up the other run;
//  - keep_last removes only the run's own older checkpoints, never the one just written and
//    never another run's.
#include <mpi.h>

#include <optional>
#include <string>
#include <vector>

#include "runtime/io/checkpoint.h"

namespace trident::io {

// A new run id: 16 hex digits from the system's random source, the clock and the process id.
std::string new_run_id();

// The run id a step file stores ("" for format 1 files); nullopt if its attributes cannot be
// read (damaged). Serial.
std::optional<std::string> checkpoint_run_id(const std::string& path);

struct CheckpointClaim {
  std::string run_id;    // stored in every checkpoint this run writes
  bool resumed = false;  // the id came from the checkpoint the run resumes
};

// Collective over `comm` (rank 0 looks; every rank gets the same answer). The run about to write
// into `dir`: resuming `resume_path` (empty: a new run) keeps its run id, a new run gets a new
// one. A UserError naming both runs and the files if `dir` holds step files of another run
// (unreadable ones count as another run's for a new run).
CheckpointClaim claim_checkpoint_dir(const std::string& dir, const std::string& resume_path,
                                     MPI_Comm comm);

// The step files keep_last removes once `just_saved` is written by run `run_id`: that run's files
// older than its newest `keep_last` (0: none). Files of other runs, unreadable ones and
// `just_saved` itself are never among them. Serial (reads each file's attributes).
std::vector<CheckpointFile> files_to_prune(const std::string& dir, const std::string& run_id,
                                           int64_t keep_last, const std::string& just_saved);

}  // namespace trident::io
