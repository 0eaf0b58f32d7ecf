#include "runtime/io/mapped_file.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>

#include "runtime/core/error.h"
#include "runtime/io/write_failure.h"

namespace trident::io {

MappedFile::MappedFile(std::string path) : path_(std::move(path)) {
  const int fd = ::open(path_.c_str(), O_RDONLY | O_CLOEXEC);
  TRIDENT_USER_CHECK(fd >= 0, "cannot open '", path_, "': ", std::strerror(errno));
  struct stat info {};
  if (::fstat(fd, &info) != 0) {
    const int err = errno;
    ::close(fd);
    TRIDENT_USER_FAIL("cannot stat '", path_, "': ", std::strerror(err));
  }
  if (!S_ISREG(info.st_mode)) {
    ::close(fd);
    TRIDENT_USER_FAIL("'", path_, "' is not a regular file");
  }
  size_ = static_cast<size_t>(info.st_size);
  if (size_ > 0) {
    void* mapped = ::mmap(nullptr, size_, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
    if (mapped == MAP_FAILED) {
      const int err = errno;
      ::close(fd);
      TRIDENT_USER_FAIL("cannot memory-map '", path_, "' (", size_,
                        " bytes): ", std::strerror(err));
    }
    data_ = static_cast<uint8_t*>(mapped);
  }
  ::close(fd);  // the mapping stays valid without the descriptor
}

MappedFile::~MappedFile() {
  if (data_ != nullptr) ::munmap(data_, size_);
}

AtomicFileWriter::AtomicFileWriter(std::string path)
    : path_(std::move(path)), temp_path_(path_ + ".tmp") {
  fd_ = ::open(temp_path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  TRIDENT_USER_CHECK(fd_ >= 0, "cannot create '", temp_path_, "' (for '", path_,
                     "'): ", std::strerror(errno),
                     "; check that the directory exists and is writable");
}

AtomicFileWriter::~AtomicFileWriter() {
  if (fd_ >= 0) {
    ::close(fd_);
    ::unlink(temp_path_.c_str());
  }
}

void AtomicFileWriter::write_at(uint64_t offset, const void* data, size_t bytes) {
  TRIDENT_CHECK(fd_ >= 0, "write to '", path_, "' after commit");
  const char* cursor = static_cast<const char*>(data);
  while (bytes > 0) {
    const ssize_t written = ::pwrite(fd_, cursor, bytes, static_cast<off_t>(offset));
    if (written < 0 && errno == EINTR) continue;
    if (written <= 0) {
      // Disk full, file size limit: the user's to fix, and the temporary is removed on drop, so
      // nothing under `path` changed.
      const std::string error = std::strerror(errno);
      const std::string why =
          explain_write_failure(std::filesystem::path(path_).parent_path().string());
      TRIDENT_USER_FAIL("cannot write '", path_, "': ", error, why.empty() ? "" : " (" + why + ")",
                        "; nothing was written under that name");
    }
    cursor += written;
    bytes -= static_cast<size_t>(written);
    offset += static_cast<uint64_t>(written);
  }
}

void AtomicFileWriter::write(const void* data, size_t bytes) {
  write_at(position_, data, bytes);
  position_ += bytes;
}

void AtomicFileWriter::commit() {
  TRIDENT_CHECK(fd_ >= 0, "'", path_, "' committed twice");
  TRIDENT_CHECK_IO(::fsync(fd_) == 0, "flushing '", temp_path_, "' failed: ", std::strerror(errno));
  const int rc = ::close(fd_);
  fd_ = -1;
  TRIDENT_CHECK_IO(rc == 0, "closing '", temp_path_, "' failed: ", std::strerror(errno));
  TRIDENT_CHECK_IO(std::rename(temp_path_.c_str(), path_.c_str()) == 0, "renaming '", temp_path_,
                   "' to '", path_, "' failed: ", std::strerror(errno));
}

}  // namespace trident::io
