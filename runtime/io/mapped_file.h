#pragma once
// A read-only view of a whole file through mmap, unmapped when the object dies. Token files
// and safetensors checkpoints are read this way so that opening a multi-gigabyte file costs
// nothing until pages are touched, and every rank shares the page cache.
//
// The mapping is private and writable (copy-on-write): a tensor view that is written to by
// mistake changes this process's copy only, never the file, and does not fault.
#include <cstddef>
#include <cstdint>
#include <string>

namespace trident::io {

class MappedFile {
 public:
  // Throws UserError naming the file if it cannot be opened or mapped.
  explicit MappedFile(std::string path);
  ~MappedFile();
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;

  const std::string& path() const { return path_; }
  size_t size() const { return size_; }
  const uint8_t* data() const { return data_; }
  uint8_t* mutable_data() const { return data_; }  // copy-on-write pages

 private:
  std::string path_;
  uint8_t* data_ = nullptr;
  size_t size_ = 0;
};

// Writes a file under a temporary name ("<path>.tmp") and renames it over `path` on commit(),
// so a reader never sees a half-written file. Dropping it uncommitted removes the temporary.
class AtomicFileWriter {
 public:
  explicit AtomicFileWriter(std::string path);
  ~AtomicFileWriter();
  AtomicFileWriter(const AtomicFileWriter&) = delete;
  AtomicFileWriter& operator=(const AtomicFileWriter&) = delete;

  // Appends at the current end.
  void write(const void* data, size_t bytes);
  // Writes at an absolute offset (the file grows as needed); the append position is unchanged.
  void write_at(uint64_t offset, const void* data, size_t bytes);
  uint64_t position() const { return position_; }
  const std::string& path() const { return path_; }
  // Flushes, closes and renames the temporary file to `path`.
  void commit();

 private:
  std::string path_;
  std::string temp_path_;
  int fd_ = -1;
  uint64_t position_ = 0;
};

}  // namespace trident::io
