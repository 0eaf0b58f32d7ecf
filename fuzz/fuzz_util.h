#pragma once
// Shared by the fuzz targets (docs/hardening.md). A target feeds one input to a parser of
// outside input and accepts exactly two outcomes: the input parses, or the parser refuses it
// with a UserError (an HDF5 or I/O error about the file is a refusal too). Anything else, an
// internal check, another exception type, a sanitizer report, a crash, is a finding: the target
// aborts and libFuzzer keeps the input.
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "runtime/core/error.h"

namespace trident::fuzz {

// Runs `parse`, turning every outcome other than "accepted" or "refused cleanly" into an abort.
template <typename Parse>
void expect_clean(Parse&& parse) {
  try {
    parse();
  } catch (const UserError&) {
  } catch (const Error& e) {
    if (e.kind() == ErrorKind::Hdf5 || e.kind() == ErrorKind::Io) return;
    std::fprintf(stderr, "fuzz finding: %s error: %s\n", error_kind_name(e.kind()), e.what());
    std::abort();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "fuzz finding: unexpected exception: %s\n", e.what());
    std::abort();
  }
}

// A finding that is not an exception: a property the parser broke.
inline void require(bool holds, const char* property) {
  if (holds) return;
  std::fprintf(stderr, "fuzz finding: %s\n", property);
  std::abort();
}

// The input as a file, for parsers that take a path (they mmap or stream it): an anonymous
// in-memory file rewritten for each input, named /proc/self/fd/N.
class MemoryFile {
 public:
  MemoryFile() : fd_(::memfd_create("trident-fuzz", 0)) {
    if (fd_ < 0) {
      std::perror("memfd_create");
      std::abort();
    }
    path_ = "/proc/self/fd/" + std::to_string(fd_);
  }
  ~MemoryFile() { ::close(fd_); }
  MemoryFile(const MemoryFile&) = delete;
  MemoryFile& operator=(const MemoryFile&) = delete;

  const std::string& write(const uint8_t* data, size_t size) {
    if (::ftruncate(fd_, 0) != 0 ||
        (size > 0 && ::pwrite(fd_, data, size, 0) != static_cast<ssize_t>(size))) {
      std::perror("writing the memory file");
      std::abort();
    }
    return path_;
  }

 private:
  int fd_;
  std::string path_;
};

// Takes bytes from the front of an input, for targets that build structured values from it;
// an exhausted input yields zeros and empty strings.
class ByteReader {
 public:
  ByteReader(const uint8_t* data, size_t size) : data_(data), size_(size) {}
  template <typename T>
  T take() {
    T value{};
    const size_t n = std::min(sizeof(T), size_ - at_);
    std::memcpy(&value, data_ + at_, n);
    at_ += n;
    return value;
  }
  bool flag() { return (take<uint8_t>() & 1) != 0; }
  // A string of up to `max` bytes (its length is the next byte).
  std::string text(size_t max = 255) {
    const size_t n = std::min<size_t>({take<uint8_t>(), max, size_ - at_});
    std::string out(reinterpret_cast<const char*>(data_ + at_), n);
    at_ += n;
    return out;
  }
  // Everything not taken yet.
  std::string rest() {
    std::string out(reinterpret_cast<const char*>(data_ + at_), size_ - at_);
    at_ = size_;
    return out;
  }

 private:
  const uint8_t* data_;
  size_t size_;
  size_t at_ = 0;
};

}  // namespace trident::fuzz
