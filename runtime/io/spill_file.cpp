#include "runtime/io/spill_file.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "runtime/core/error.h"

namespace trident::io {

namespace {
constexpr size_t kBufferBytes = size_t{1} << 20;
}

SpillFile::SpillFile(std::string path) : path_(std::move(path)) {
  fd_ = ::open(path_.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  TRIDENT_USER_CHECK(fd_ >= 0, "cannot create '", path_, "': ", std::strerror(errno),
                     "; check that the directory exists and is writable");
  buffer_.reserve(kBufferBytes);
}

SpillFile::~SpillFile() {
  if (fd_ >= 0) ::close(fd_);
  ::unlink(path_.c_str());
}

void SpillFile::append(const void* data, size_t bytes) {
  const auto* cursor = static_cast<const uint8_t*>(data);
  size_ += bytes;
  while (bytes > 0) {
    const size_t take = std::min(bytes, kBufferBytes - buffer_.size());
    buffer_.insert(buffer_.end(), cursor, cursor + take);
    cursor += take;
    bytes -= take;
    if (buffer_.size() == kBufferBytes) flush();
  }
}

void SpillFile::flush() {
  const uint8_t* cursor = buffer_.data();
  size_t left = buffer_.size();
  while (left > 0) {
    const ssize_t written = ::write(fd_, cursor, left);
    if (written < 0 && errno == EINTR) continue;
    TRIDENT_CHECK_IO(written > 0, "writing '", path_, "' failed: ", std::strerror(errno));
    cursor += written;
    left -= static_cast<size_t>(written);
  }
  buffer_.clear();
}

void SpillFile::copy_to(AtomicFileWriter& out) {
  flush();
  std::vector<uint8_t> chunk(kBufferBytes);
  off_t offset = 0;
  while (static_cast<uint64_t>(offset) < size_) {
    const ssize_t got = ::pread(fd_, chunk.data(), chunk.size(), offset);
    if (got < 0 && errno == EINTR) continue;
    TRIDENT_CHECK_IO(got > 0, "reading '", path_, "' back failed: ", std::strerror(errno));
    out.write(chunk.data(), static_cast<size_t>(got));
    offset += got;
  }
}

}  // namespace trident::io
