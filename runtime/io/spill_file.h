#pragma once
// A side file that takes appended bytes through a fixed buffer and hands them back in order:
// the token-file writer parks document offsets and loss masks in two of these, so its memory
// stays the same however large the dataset grows. The file is removed when the object dies.
#include <cstdint>
#include <string>
#include <vector>

#include "runtime/io/mapped_file.h"

namespace trident::io {

class SpillFile {
 public:
  explicit SpillFile(std::string path);
  ~SpillFile();
  SpillFile(const SpillFile&) = delete;
  SpillFile& operator=(const SpillFile&) = delete;

  void append(const void* data, size_t bytes);
  uint64_t size() const { return size_; }
  // Appends everything written so far to `out`, in order, a buffer at a time.
  void copy_to(AtomicFileWriter& out);

 private:
  void flush();

  std::string path_;
  int fd_ = -1;
  std::vector<uint8_t> buffer_;
  uint64_t size_ = 0;
};

}  // namespace trident::io
