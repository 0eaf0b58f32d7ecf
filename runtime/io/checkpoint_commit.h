#pragma once
// The parts of a collective checkpoint save around the tensor write (checkpoint.cpp): checking
// the directory before anything is written, agreeing on failures so that every rank stops at
// the same collective call, failing with a message that says why, and pruning old files after
// the new one is in place. A save touches nothing but its own <step>.h5.tmp until the rename,
// so whatever goes wrong, the checkpoints already in the directory stay as they were.
#include <mpi.h>

#include <cstdint>
#include <exception>
#include <string>

namespace trident::io {

// Rank 0, serial: refuses (UserError) a `dir` that could not hold checkpoints: a path that is not
// a directory, or one this user cannot write into; when `dir` does not exist yet, the same of
// its nearest existing ancestor, where it would be created. Creates nothing, so a run that fails
// before its first save leaves no directory behind. Called when a run claims its checkpoint
// directory (checkpoint_claim.h): a bad --checkpoint-dir fails at start-up, not at the first
// save hours later.
void check_checkpoint_dir(const std::string& dir);

// Rank 0, serial: creates `dir` if needed and refuses (UserError) a directory it cannot write
// into, a `final_path` that holds another run's checkpoint (checkpoint_claim.h), or a save of
// `bytes_needed` that cannot fit: the space is claimed for `tmp_path` (fallocate) and given back
// before HDF5 writes it, so a full disk or file size limit (ulimit -f) is found before any
// collective write. (Found inside HDF5 instead, a close that cannot extend the file leaves
// HDF5 1.10 with a half-closed file that crashes it at MPI_Finalize.)
void prepare_checkpoint_dir(const std::string& dir, const std::string& final_path,
                            const std::string& tmp_path, const std::string& run_id,
                            uint64_t bytes_needed);

// An upper bound of a checkpoint file's size: the tensors' bytes, plus HDF5's object headers,
// names and attributes (measured at about 2 KiB per dataset; bounded by 4 KiB) and the root
// attributes with the stored config (256 KiB).
uint64_t checkpoint_size_bound(uint64_t tensor_bytes, uint64_t datasets);

// The message of an exception without the rank/file:line prefix of trident::Error.
std::string failure_text(const std::exception& e);

// Collective: "" if every rank's `local_failure` is empty, else the lowest failing rank's
// failure, prefixed with "rank N: ", on every rank.
std::string agree_on_failure(const std::string& local_failure, MPI_Comm comm);

// Collective, never returns: rank 0 removes `tmp_path`, and every rank throws the same
// UserError saying why `final_path` could not be written (disk full, file size limit,
// permission: explain_write_failure) and that the directory's checkpoints are intact.
[[noreturn]] void fail_save(const std::string& dir, const std::string& tmp_path,
                            const std::string& final_path, const std::string& failure,
                            MPI_Comm comm);

// Rank 0, serial, after the rename: removes stale step_*.h5.tmp files and the run's files
// beyond keep_last (files_to_prune); failures to remove are logged, not fatal.
void prune_after_save(const std::string& dir, const std::string& run_id, int64_t keep_last,
                      const std::string& just_saved);

}  // namespace trident::io
