#pragma once
// Reads a file line by line through a fixed buffer, with a cap on the length of one line, so a
// multi-gigabyte input (or one without newlines) is read in constant memory. Lines come back
// without their '\n'; a line longer than the cap is skipped to its end and flagged.
#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

namespace trident::io {

struct Line {
  std::string text;
  int64_t number = 0;     // 1-based
  bool too_long = false;  // over the cap: text is empty, the rest of the line was skipped
};

class LineReader {
 public:
  // Throws UserError naming `path` when it cannot be opened.
  LineReader(const std::string& path, size_t max_line_bytes);
  ~LineReader();
  LineReader(const LineReader&) = delete;
  LineReader& operator=(const LineReader&) = delete;

  // The next line, or false at the end of the file.
  bool next(Line& line);
  uint64_t bytes_read() const { return consumed_; }  // bytes of the lines returned so far
  uint64_t file_size() const { return file_size_; }

 private:
  bool fill();

  std::string path_;
  std::FILE* file_ = nullptr;
  size_t max_line_bytes_;
  std::vector<char> buffer_;
  size_t begin_ = 0, end_ = 0;
  uint64_t consumed_ = 0;
  uint64_t file_size_ = 0;
  int64_t number_ = 0;
  bool eof_ = false;
};

}  // namespace trident::io
