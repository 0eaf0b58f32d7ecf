#include "runtime/core/error.h"

#include <mpi.h>

#include <atomic>
#include <cstdlib>
#include <mutex>

namespace trident {

namespace {
std::atomic<int> g_rank{-2};  // -2: not yet resolved

int rank_from_environment() {
  for (const char* name : {"OMPI_COMM_WORLD_RANK", "PMIX_RANK", "PMI_RANK", "SLURM_PROCID"}) {
    if (const char* value = std::getenv(name)) return std::atoi(value);
  }
  return 0;
}

std::string format_location(const char* file, int line) {
  std::string path = file;
  // Report paths relative to the source tree: runtime/core/x.cpp, not /home/.../runtime/...
  for (const char* root : {"runtime/", "parallel/", "models/", "ops/", "launch/", "tests/"}) {
    auto pos = path.rfind(std::string("/") + root);
    if (pos != std::string::npos) {
      path = path.substr(pos + 1);
      break;
    }
  }
  return path + ":" + std::to_string(line);
}
}  // namespace

int current_rank() {
  int rank = g_rank.load();
  if (rank == -2) {
    rank = rank_from_environment();
    g_rank.store(rank);
  }
  return rank;
}

void set_current_rank(int rank) { g_rank.store(rank); }

const char* error_kind_name(ErrorKind kind) {
  switch (kind) {
    case ErrorKind::Internal: return "internal error";
    case ErrorKind::User: return "error";
    case ErrorKind::Cuda: return "CUDA error";
    case ErrorKind::Nccl: return "NCCL error";
    case ErrorKind::Cudnn: return "cuDNN error";
    case ErrorKind::Mpi: return "MPI error";
    case ErrorKind::Hdf5: return "HDF5 error";
    case ErrorKind::Io: return "I/O error";
    case ErrorKind::Timeout: return "timeout";
  }
  return "error";
}

Error::Error(ErrorKind kind, const std::string& message, const char* file, int line)
    : std::runtime_error("[rank " + std::to_string(current_rank()) + "] " +
                         error_kind_name(kind) + " at " + format_location(file, line) + ": " +
                         message),
      kind_(kind),
      detail_(message) {}

namespace {
std::mutex g_last_error_mutex;
std::string g_last_error;  // diagnostics only: read by last_error_message()
}  // namespace

std::string last_error_message() {
  const std::lock_guard<std::mutex> lock(g_last_error_mutex);
  return g_last_error;
}

namespace detail {
void throw_error(ErrorKind kind, const char* file, int line, const std::string& msg) {
  {
    const std::lock_guard<std::mutex> lock(g_last_error_mutex);
    g_last_error = std::string(error_kind_name(kind)) + ": " + msg;
  }
  if (kind == ErrorKind::User) throw UserError(msg, file, line);
  throw Error(kind, msg, file, line);
}

std::string mpi_error_string(int code) {
  int initialized = 0;
  MPI_Initialized(&initialized);
  if (!initialized) return "code " + std::to_string(code) + " (MPI not initialised)";
  char buffer[MPI_MAX_ERROR_STRING];
  int length = 0;
  if (MPI_Error_string(code, buffer, &length) != MPI_SUCCESS) return "code " + std::to_string(code);
  return std::string(buffer, static_cast<size_t>(length));
}
}  // namespace detail

}  // namespace trident
