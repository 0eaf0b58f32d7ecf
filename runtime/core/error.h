#pragma once
// One error family for the whole runtime. Every failure is a trident::Error carrying the
// rank, the source location and a message that says what to do; user mistakes (bad config,
// missing file, a layout that does not divide the model) are UserError so the CLI can print
// one clear line and exit non-zero instead of dumping a stack.

#include <sstream>
#include <stdexcept>
#include <string>

namespace trident {

enum class ErrorKind { Internal, User, Cuda, Nccl, Cudnn, Mpi, Hdf5, Io, Timeout };

const char* error_kind_name(ErrorKind kind);

class Error : public std::runtime_error {
 public:
  Error(ErrorKind kind, const std::string& message, const char* file, int line);
  ErrorKind kind() const { return kind_; }
  // The message without the "[rank N] file:line" prefix.
  const std::string& detail() const { return detail_; }

 private:
  ErrorKind kind_;
  std::string detail_;
};

// A mistake in what the user supplied: config, CLI flag, data file, checkpoint, layout.
class UserError : public Error {
 public:
  UserError(const std::string& message, const char* file, int line)
      : Error(ErrorKind::User, message, file, line) {}
};

// The message of the most recent trident::Error this process raised ("" if none), for a last
// word when a process must end before its error reaches main() (launch/finalize_guard.cpp).
std::string last_error_message();

// The rank reported in every error and log line. Set once MPI is up; before that the
// launcher's environment (OMPI_COMM_WORLD_RANK, PMIX_RANK, SLURM_PROCID) is used.
int current_rank();
void set_current_rank(int rank);

namespace detail {
template <typename... Args>
std::string concat(const Args&... args) {
  std::ostringstream out;
  (out << ... << args);
  return out.str();
}
[[noreturn]] void throw_error(ErrorKind kind, const char* file, int line, const std::string& msg);
}  // namespace detail

}  // namespace trident

#define TRIDENT_FAIL_KIND(kind, ...) \
  ::trident::detail::throw_error(kind, __FILE__, __LINE__, ::trident::detail::concat(__VA_ARGS__))

// Internal invariant: a bug in Trident if it fires.
#define TRIDENT_CHECK(cond, ...)                                                           \
  do {                                                                                     \
    if (!(cond)) TRIDENT_FAIL_KIND(::trident::ErrorKind::Internal, "check failed: " #cond \
                                   " ", ##__VA_ARGS__);                                    \
  } while (0)

// Something the user supplied is wrong: the message must name the field and the valid values.
#define TRIDENT_USER_CHECK(cond, ...)                                                    \
  do {                                                                                   \
    if (!(cond)) TRIDENT_FAIL_KIND(::trident::ErrorKind::User, __VA_ARGS__);             \
  } while (0)

#define TRIDENT_USER_FAIL(...) TRIDENT_FAIL_KIND(::trident::ErrorKind::User, __VA_ARGS__)
#define TRIDENT_FAIL(...) TRIDENT_FAIL_KIND(::trident::ErrorKind::Internal, __VA_ARGS__)

#define TRIDENT_CHECK_IO(cond, ...)                                                      \
  do {                                                                                   \
    if (!(cond)) TRIDENT_FAIL_KIND(::trident::ErrorKind::Io, __VA_ARGS__);               \
  } while (0)

// MPI: every MPI call returns an error code; MPI_ERRORS_RETURN is installed on our comms.
#define TRIDENT_CHECK_MPI(expr)                                                          \
  do {                                                                                   \
    int trident_mpi_rc_ = (expr);                                                        \
    if (trident_mpi_rc_ != 0)                                                            \
      TRIDENT_FAIL_KIND(::trident::ErrorKind::Mpi, #expr " failed: ",                    \
                        ::trident::detail::mpi_error_string(trident_mpi_rc_));           \
  } while (0)

// HDF5: negative return values (herr_t or hid_t) mean failure.
#define TRIDENT_CHECK_HDF5(expr)                                                         \
  ([&]() {                                                                               \
    auto trident_h5_rc_ = (expr);                                                        \
    if (trident_h5_rc_ < 0) TRIDENT_FAIL_KIND(::trident::ErrorKind::Hdf5, #expr " failed"); \
    return trident_h5_rc_;                                                               \
  }())

namespace trident::detail {
std::string mpi_error_string(int code);
}
