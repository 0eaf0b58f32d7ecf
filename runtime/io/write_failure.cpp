#include "runtime/io/write_failure.h"

#include <fcntl.h>
#include <sys/resource.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace trident::io {

std::string explain_write_failure(const std::string& dir, uint64_t bytes_needed) {
  std::string why;
  const auto add = [&why](const std::string& reason) { why += (why.empty() ? "" : "; ") + reason; };
  const std::string where = dir.empty() ? "." : dir;
  if (::access(where.c_str(), W_OK) != 0) {
    add("'" + where + "' is not writable (" + std::strerror(errno) + ")");
  }
  struct statvfs fs {};
  if (::statvfs(where.c_str(), &fs) == 0) {
    const uint64_t free_bytes = static_cast<uint64_t>(fs.f_bavail) * fs.f_frsize;
    // A few blocks left is "full" for a checkpoint of any useful size.
    if (free_bytes < 16 * static_cast<uint64_t>(fs.f_frsize) ||
        (bytes_needed > 0 && free_bytes < bytes_needed)) {
      add("the file system holding '" + where + "' is full (" + std::to_string(free_bytes) +
          " bytes free)");
    }
  }
  struct rlimit limit {};
  if (::getrlimit(RLIMIT_FSIZE, &limit) == 0 && limit.rlim_cur != RLIM_INFINITY) {
    add("the file size limit of this process (ulimit -f) is " + std::to_string(limit.rlim_cur) +
        " bytes");
  }
  return why;
}

std::string probe_space(const std::string& path, uint64_t bytes) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return std::strerror(errno);
  std::string failure;
  if (::fallocate(fd, 0, 0, static_cast<off_t>(bytes)) != 0) {
    const int error = errno;
    // A file system without fallocate: explain_write_failure's checks stand in for it.
    if (error != EOPNOTSUPP && error != ENOSYS) failure = std::strerror(error);
  }
  ::close(fd);
  ::unlink(path.c_str());
  return failure;
}

}  // namespace trident::io
