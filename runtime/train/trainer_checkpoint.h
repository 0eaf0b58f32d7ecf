#pragma once
// A Trainer's complete state in a checkpoint (runtime/io/checkpoint.h, docs/checkpoint-format.md):
// the weights (router biases included), the AdamW moments this rank holds (the whole flat
// buffer, or its ZeRO-1 shards over dp and, with expert parallelism, over edp), the step, the
// data position, the full config and the layout that wrote it.
//
// The data pipeline is a pure function of the step (BatchSampler::rows(step, ...)) and the
// optimizer has no other state, so restoring the step restores the data position and the LR
// schedule exactly; a same-layout resume is bit-identical to an uninterrupted run. Any other
// layout loads too (every rank reads its own slices and shards of the global tensors), and the
// ZeRO-1 master weights are re-derived from the loaded fp32 weights.
//
// A store that holds only some layers (pipeline stages) writes and reads only those: the file is
// complete as long as every tensor is held by some rank of `comm`.
#include <mpi.h>

#include <string>

#include "runtime/io/checkpoint.h"
#include "runtime/train/trainer.h"

namespace trident::train {

// What a checkpoint of the trainer's current state records besides the tensors.
io::CheckpointState trainer_state(const Trainer& trainer);

// Collective over `comm` (every rank of the job). Writes <dir>/step_<step>.h5; returns its path.
std::string save_trainer_checkpoint(Trainer& trainer, const std::string& dir, MPI_Comm comm,
                                    const io::CheckpointSaveOptions& options = {});

// Collective over `comm`. Loads weights, moments and step into `trainer`, whatever layout wrote
// the file; the trainer's next step() is the checkpoint's step + 1. A file without optimizer
// state leaves zero moments (logged).
io::LoadedCheckpoint load_trainer_checkpoint(Trainer& trainer, const std::string& path,
                                             MPI_Comm comm);

// checkpoint.resume / --resume: "" → no resume (empty result); "auto" → the newest valid
// checkpoint in `dir` (newer refused ones are logged; empty if there is none); anything else is
// a path that must exist and verify (checksums; a damaged file is a UserError with the reason).
// Collective over `comm`; every rank gets the same answer.
std::string resolve_resume(const std::string& resume, const std::string& dir, MPI_Comm comm);

}  // namespace trident::train
