#pragma once
// Why a file could not be written, in words a user can act on. HDF5 and MPI-IO report a failed
// write as "MPI_File_write_at_all failed" or "H5Dwrite failed"; the cause is nearly always one
// of three things the system can tell us directly: the file system is full, the process's file
// size limit (`ulimit -f`) was reached, or the directory is not writable.
#include <cstdint>
#include <string>

namespace trident::io {

// "the file system holding 'DIR' is full (0 bytes free)", "the file size limit of this process
// (ulimit -f) is 1048576 bytes", "'DIR' is not writable (Permission denied)"; several joined by
// "; ", or "" when none applies. `bytes_needed` (0: unknown) is what the write would still add.
std::string explain_write_failure(const std::string& dir, uint64_t bytes_needed = 0);

// Claims `bytes` for a new file at `path` (fallocate) and removes it again: "" if they fit,
// else the system's reason ("No space left on device", "File too large"). A writer that cannot
// survive a failure halfway (HDF5) asks first. File systems without fallocate answer "".
std::string probe_space(const std::string& path, uint64_t bytes);

}  // namespace trident::io
